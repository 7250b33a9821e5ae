/**
 * Renders rows as a plain aligned text table. Columns of numbers are
 * right-aligned; a dotted quad is an address, not a number, and stays left.
 */
export function renderTable(
  header: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => isNumber(r[i] ?? '')));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

// 1,234 or 12.5 or 7; not 192.0.2.1.
function isNumber(cell: string): boolean {
  return /^-?[\d,]+(\.\d+)?$/.test(cell);
}
