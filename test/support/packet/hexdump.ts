const BYTES_PER_LINE = 16;

/**
 * Classic offset + hex lines; under each line holding a byte in `marked`, a line of '^^'
 * pointing at those bytes.
 */
export function hexdump(data: Uint8Array, marked: ReadonlySet<number> = new Set()): string {
  const lines: string[] = [];
  for (let start = 0; start < data.length; start += BYTES_PER_LINE) {
    const row = Array.from(data.subarray(start, start + BYTES_PER_LINE));
    const offset = start.toString(16).padStart(4, '0');
    lines.push(`  ${offset}  ${row.map((b) => b.toString(16).padStart(2, '0')).join(' ')}`);
    const marks = row.map((_, i) => (marked.has(start + i) ? '^^' : '  '));
    if (marks.some((m) => m !== '  ')) lines.push(`        ${marks.join(' ')}`.trimEnd());
  }
  return lines.join('\n');
}
