// Label and field selectors in the syntax of k8s.io/apimachinery's
// labels.Parse and fields.ParseSelector.
import { badRequest } from './errors.js';

type LabelRequirement =
  | { op: 'exists' | '!'; key: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'gt' | 'lt'; key: string; value: number };

export type LabelSelector = (labels: Record<string, string>) => boolean;

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((p) => p.trim()).filter((p) => p !== '');
}

function parseRequirement(term: string): LabelRequirement {
  let m = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term);
  if (m) {
    const values = (m[3] ?? '').split(',').map((v) => v.trim());
    return { op: m[2] as 'in' | 'notin', key: m[1] ?? '', values };
  }
  m = /^([^=!<>\s]+)\s*(==|=|!=|<|>)\s*([^=!<>\s]*)$/.exec(term);
  if (m) {
    const key = m[1] ?? '';
    const value = m[3] ?? '';
    switch (m[2]) {
      case '!=':
        return { op: 'notin', key, values: [value] };
      case '<':
      case '>': {
        const n = Number(value);
        if (!Number.isInteger(n))
          throw badRequest(
            `unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer`,
          );
        return { op: m[2] === '<' ? 'lt' : 'gt', key, value: n };
      }
      default:
        return { op: 'in', key, values: [value] };
    }
  }
  m = /^(!?)\s*([^=!<>\s(),]+)$/.exec(term);
  if (m) return { op: m[1] === '!' ? '!' : 'exists', key: m[2] ?? '' };
  throw badRequest(
    `unable to parse requirement: found '${term}', expected: in, notin, =, ==, !=, gt, lt`,
  );
}

function matches(r: LabelRequirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key);
  const v = labels[r.key];
  switch (r.op) {
    case 'exists':
      return has;
    case '!':
      return !has;
    case 'in':
      return has && r.values.includes(v ?? '');
    case 'notin':
      return !has || !r.values.includes(v ?? '');
    case 'gt':
    case 'lt': {
      if (!has) return false;
      const n = Number(v);
      if (!Number.isInteger(n)) return false;
      return r.op === 'gt' ? n > r.value : n < r.value;
    }
  }
}

export function parseLabelSelector(s: string | null): LabelSelector {
  if (s === null || s.trim() === '') return () => true;
  const reqs = splitTop(s).map(parseRequirement);
  return (labels) => reqs.every((r) => matches(r, labels));
}

export interface FieldRequirement {
  field: string;
  value: string;
  negate: boolean;
}

function unescape(v: string): string {
  return v.replace(/\\(.)/g, '$1');
}

/** Terms "a=b", "a==b", "a!=b" joined by commas; "\," "\=" and "\\" escape. */
export function parseFieldSelector(s: string | null): FieldRequirement[] {
  if (s === null || s.trim() === '') return [];
  const terms = s.split(/(?<!\\),/).filter((t) => t !== '');
  return terms.map((t) => {
    const m = /^(.*?)(!=|==|=)(.*)$/.exec(t);
    if (!m) throw badRequest(`invalid selector: '${s}'; can't understand '${t}'`);
    return { field: (m[1] ?? '').trim(), value: unescape(m[3] ?? ''), negate: m[2] === '!=' };
  });
}
