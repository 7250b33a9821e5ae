// `npm run bench -- datapath`: what xlb's XDP program costs per packet on
// each of its paths, and what rate it sustains on a veth, each next to a
// baseline program measured in the same run with the same method.
//
// 1. BPF_PROG_TEST_RUN (bench/datapath/testrun.ts): ns/packet per path
//    against bench_drop. Paths that rewrite the packet are measured with
//    single-repetition calls (a repeat loop would run them on their own
//    output); the rest also with a repeat loop. Every batch is checked
//    against xlb's counters.
// 2. Live frames through veths (bench/datapath/live.ts): Mpps of xlb
//    encapsulating and redirecting against bench_redirect, and of xlb
//    passing into the stack against bench_pass, with many flows, all
//    connection-table hits after a warm-up; every run checked likewise.
// 3. verified_insns of xlb_xdp, from the program's fdinfo.
import { requireRoot } from '../control/system/privileges.js';
import { measureLive, type LiveOptions, type LiveResult } from './datapath/live.js';
import { measureTestRun, type TestRunOptions, type TestRunResult } from './datapath/testrun.js';
import type { Figure } from './results.js';

export const testRunSettings: TestRunOptions = { rounds: 5, calls: 5000, repeat: 1_000_000 };
export const liveSettings: LiveOptions = {
  rounds: 3,
  packets: 2_000_000,
  passPackets: 500_000,
  flows: 1024,
  timeLimitSeconds: 2,
};

const HIT_TARGET = { op: '<=', value: 2.5 } as const;
const ENCAP_TARGET = { op: '>=', value: 0.8 } as const;

export function testRunFigures(r: TestRunResult, o: TestRunOptions): Figure[] {
  const method = {
    single: `single: repeat 1, mean of ${o.calls} calls, median of ${o.rounds}`,
    loop: `loop: repeat ${o.repeat}, median of ${o.rounds}`,
  };
  const figures: Figure[] = [];
  for (const m of ['single', 'loop'] as const) {
    const baseline = r.baseline[m];
    const cases = [...r.paths.values()].filter((p) => p.case.method === m);
    if (cases.length === 0) continue;
    figures.push({
      name: `[${method[m]}] baseline bench_drop: count, XDP_DROP`,
      value: baseline,
      unit: 'ns/packet',
    });
    for (const p of cases) {
      figures.push({
        name: `[${method[m]}] xlb_xdp ${p.case.label}`,
        value: p.ns,
        unit: 'ns/packet',
        baseline,
      });
    }
  }
  const hit = r.paths.get('hit');
  if (hit) {
    figures.push({
      name: `ratio [${method.single}]: ns of xlb conn hit (IPv4, DNAT) / ns of bench_drop`,
      value: hit.ns / r.baseline.single,
      unit: 'x',
      target: HIT_TARGET,
    });
  }
  const hitLoop = r.paths.get('hitLoop');
  if (hitLoop) {
    figures.push({
      name: `ratio [${method.loop}]: ns of xlb conn hit (IPv4, DNAT onto VIP:port) / ns of bench_drop`,
      value: hitLoop.ns / r.baseline.loop,
      unit: 'x',
      target: HIT_TARGET,
    });
  }
  if (r.verifiedInsns !== undefined) {
    figures.push({
      name: 'xlb_xdp instructions processed by the verifier (verified_insns)',
      value: r.verifiedInsns,
      unit: 'insns',
    });
  }
  return figures;
}

export function liveFigures(r: LiveResult): Figure[] {
  const rounds = r.paths.values().next().value?.runs.length ?? 0;
  const veth = `[veth, 1 core, ${r.flows} flows, median of ${rounds}]`;
  const mpps = (k: Parameters<LiveResult['paths']['get']>[0]): number | undefined =>
    r.paths.get(k)?.mpps;
  const figures: Figure[] = [];
  const redirect = mpps('redirect');
  const encap = mpps('encap');
  const pass = mpps('pass');
  const local = mpps('local');
  const notVip = mpps('notVip');
  if (redirect !== undefined) {
    figures.push({
      name: `${veth} baseline bench_redirect: TCP/IPv6 74 B into eth1 -> sink`,
      value: redirect,
      unit: 'Mpps',
    });
  }
  if (encap !== undefined) {
    figures.push({
      name: `${veth} xlb_xdp conn hit, encapsulate IPv6-in-IPv6, redirect -> sink`,
      value: encap,
      unit: 'Mpps',
      ...(redirect !== undefined ? { baseline: redirect } : {}),
    });
  }
  const share = r.paths.get('encap')?.cacheHitShare;
  if (share !== undefined) {
    figures.push({
      name: `${veth} share of the encapsulated packets served from the flow cache (the rest: slot taken by another flow, full path)`,
      value: share * 100,
      unit: '%',
    });
  }
  if (redirect !== undefined && encap !== undefined) {
    figures.push({
      name: 'ratio [veth]: rate of xlb encapsulate+redirect / rate of bench_redirect',
      value: encap / redirect,
      unit: 'x',
      target: ENCAP_TARGET,
    });
  }
  if (pass !== undefined) {
    figures.push({
      name: `${veth} baseline bench_pass: TCP/IPv4 64 B into the stack (dropped there, other-host)`,
      value: pass,
      unit: 'Mpps',
    });
  }
  const vsPass = pass !== undefined ? { baseline: pass } : {};
  if (local !== undefined) {
    figures.push({
      name: `${veth} xlb_xdp conn hit, local backend = VIP:port: DNAT, PASS into the same stack`,
      value: local,
      unit: 'Mpps',
      ...vsPass,
    });
  }
  if (notVip !== undefined) {
    figures.push({
      name: `${veth} xlb_xdp not a VIP: PASS into the same stack`,
      value: notVip,
      unit: 'Mpps',
      ...vsPass,
    });
  }
  return figures;
}

export function run(): Promise<Figure[]> {
  requireRoot('the datapath benchmark');
  const testRun = measureTestRun(testRunSettings);
  const live = measureLive(liveSettings);
  return Promise.resolve([...testRunFigures(testRun, testRunSettings), ...liveFigures(live)]);
}
