// `xlb explain` output: a verdict line, then the steps that led to it.
import type { Explanation } from './verdict.js';

const headline: Record<Explanation['verdict']['kind'], string> = {
  notVip: 'PASS: not a VIP',
  noFrontend: 'DROP: no frontend for that port',
  sourceRefused: 'DROP: refused by source ranges',
  conntrack: 'FORWARD: connection-table hit',
  affinity: 'FORWARD: session-affinity hit',
  maglev: 'FORWARD: Maglev',
  noBackend: 'DROP: no backend',
};

const endpoint = (a: string, p: number): string => (a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);

export function renderExplanation(e: Explanation): string[] {
  const f = e.flow;
  return [
    `${endpoint(f.client, f.clientPort)} -> ${endpoint(f.vip, f.port)}/${f.proto}: ${headline[e.verdict.kind]}`,
    ...e.steps.map((s, i) => `  ${i + 1}. ${s}`),
  ];
}

/** The machine-readable form (`--json`). */
export function explanationJson(e: Explanation): string {
  return JSON.stringify(e, null, 2);
}
