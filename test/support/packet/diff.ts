import { dissect, formatValue, type DissectOptions } from './dissect.js';
import type { Field } from './cursor.js';
import { hexdump } from './hexdump.js';

/** Fields keyed by path; a repeated path (only garbage produces one) gets '#2', '#3'... */
function byPath(fields: readonly Field[]): Map<string, Field> {
  const map = new Map<string, Field>();
  for (const field of fields) {
    let key = field.path;
    for (let n = 2; map.has(key); n++) key = `${field.path}#${n}`;
    map.set(key, field);
  }
  return map;
}

function describe(field: Field | undefined): string {
  if (field === undefined) return '<absent>';
  const note = field.note === undefined ? '' : ` [${field.note}]`;
  return `${formatValue(field.value)}${note}`;
}

function fieldLines(expected: readonly Field[], actual: readonly Field[]): string[] {
  const want = byPath(expected);
  const got = byPath(actual);
  const paths = [...want.keys(), ...[...got.keys()].filter((p) => !want.has(p))];
  return paths.flatMap((path) => {
    const a = describe(want.get(path));
    const b = describe(got.get(path));
    return a === b ? [] : [`  ${path}: expected ${a}, actual ${b}`];
  });
}

function differingBytes(a: Uint8Array, b: Uint8Array): Set<number> {
  const marked = new Set<number>();
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) marked.add(i);
  return marked;
}

/**
 * undefined when the packets are byte-identical; otherwise a report for a test failure: the
 * differing fields (path, expected, actual), the length difference and both hex dumps with
 * the differing bytes marked.
 */
export function diffPackets(
  expected: Uint8Array,
  actual: Uint8Array,
  options: DissectOptions = {},
): string | undefined {
  if (Buffer.compare(expected, actual) === 0) return undefined;
  const lines = fieldLines(dissect(expected, options), dissect(actual, options));
  const out = [`packets differ (${lines.length} field${lines.length === 1 ? '' : 's'}):`, ...lines];
  if (expected.length !== actual.length) {
    out.push(`  length: expected ${expected.length}, actual ${actual.length}`);
  }
  const marked = differingBytes(expected, actual);
  out.push(`expected (${expected.length} bytes):`, hexdump(expected, marked));
  out.push(`actual (${actual.length} bytes):`, hexdump(actual, marked));
  return out.join('\n');
}
