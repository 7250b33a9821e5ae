// The datapath benchmark's harness (bench/datapath/), run tiny: it measures
// every path, proves each batch took the path it is named after, and throws
// when a packet takes another path. Not a timed test: no speed is asserted.
import { execFileSync } from 'node:child_process';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { liveFigures, testRunFigures } from '../bench/datapath.js';
import { measureLive } from '../bench/datapath/live.js';
import {
  ipipFrame,
  missFrame,
  NOT_A_VIP,
  REMOTE_NODE,
  tcpFrame,
  VIP_LOCAL,
  VIP_SELF,
} from '../bench/datapath/plan.js';
import { measureTestRun, pathCases, TestRunLab, type PathCase } from '../bench/datapath/testrun.js';
import { WrongPathError } from '../bench/datapath/verify.js';
import { XdpAction } from '../native/index.js';
import { requirePrivileges } from './support/privileged.js';

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n !== '');
}

const leftovers = (prefix: string): string[] =>
  namespaces().filter((n) => n.startsWith(`${prefix}-`));

const caseOf = (key: string): PathCase => {
  const c = pathCases().find((x) => x.key === key);
  if (!c) throw new Error(`no path ${key}`);
  return c;
};

describe('datapath benchmark, test-run half', () => {
  beforeAll(() => requirePrivileges('bench-datapath'));

  it('measures every path and the baseline with both methods, then removes its namespace', () => {
    const o = { rounds: 1, calls: 20, repeat: 200, prefix: 'xlbdt' };
    const r = measureTestRun(o);
    expect([...r.paths.keys()].sort()).toEqual(
      [
        'decap',
        'encap',
        'encap6',
        'hit',
        'hitFull',
        'hitLoop',
        'ipv6',
        'miss',
        'notVip',
        'notVipLoop',
      ].sort(),
    );
    for (const [key, p] of r.paths) {
      expect(p.ns, key).toBeGreaterThan(0);
      expect(Number.isFinite(p.ns), key).toBe(true);
    }
    expect(r.baseline.single).toBeGreaterThan(0);
    expect(r.baseline.loop).toBeGreaterThan(0);
    expect(r.verifiedInsns).toBeGreaterThan(1000);
    const figures = testRunFigures(r, o);
    const ratios = figures.filter((f) => f.target);
    expect(ratios.map((f) => f.target)).toEqual([
      { op: '<=', value: 2.5 },
      { op: '<=', value: 2.5 },
    ]);
    expect(ratios[0]!.value).toBeCloseTo(r.paths.get('hit')!.ns / r.baseline.single, 9);
    expect(leftovers('xlbdt')).toEqual([]);
  });

  describe('path verification', () => {
    let lab: TestRunLab;
    beforeAll(() => {
      lab = TestRunLab.create('xlbdv');
      for (const c of pathCases()) lab.prime(c);
    });
    afterAll(() => lab?.destroy());

    it('accepts packets that take the intended path', () => {
      for (const key of ['hit', 'hitFull', 'encap', 'decap', 'miss', 'notVip']) {
        expect(lab.measurePath(caseOf(key), 5), key).toBeGreaterThan(0);
      }
      expect(lab.measurePath(caseOf('hitLoop'), 100)).toBeGreaterThan(0);
      expect(lab.measureBaseline('single', 5)).toBeGreaterThan(0);
    });

    it('throws when a repeat loop runs a DNAT on its own output (the path after the first repetition is not-a-VIP)', () => {
      const loopOverDnat: PathCase = { ...caseOf('hit'), method: 'loop' };
      expect(() => lab.measurePath(loopOverDnat, 10)).toThrow(WrongPathError);
      expect(() => lab.measurePath(loopOverDnat, 10)).toThrow(
        /1 of 10 packets in LOCAL.*PASS_NOT_VIP=9/,
      );
      // The same for encapsulation and decapsulation.
      expect(() => lab.measurePath({ ...caseOf('encap'), method: 'loop' }, 10)).toThrow(
        WrongPathError,
      );
      expect(() => lab.measurePath({ ...caseOf('decap'), method: 'loop' }, 10)).toThrow(
        WrongPathError,
      );
    });

    it('throws when the packets take another path with the same verdict', () => {
      // Not a VIP: XDP_PASS like the hit path, but no DNAT and no conntrack hit.
      const notVip = tcpFrame(NOT_A_VIP);
      expect(() =>
        lab.measurePath({ ...caseOf('hit'), frames: (n) => new Array<Buffer>(n).fill(notVip) }, 5),
      ).toThrow(/0 of 5 packets in LOCAL/);
      // A flow already in the table is a hit, not a miss.
      const known = missFrame(0);
      lab.runBatch('prime', lab.dp.xdp, [known], XdpAction.pass);
      expect(() =>
        lab.measurePath({ ...caseOf('miss'), frames: (n) => new Array<Buffer>(n).fill(known) }, 5),
      ).toThrow(/event CONNTRACK_MISS counted 0 times, expected 5/);
      // Plain traffic to the VIP is a hit but not a decapsulation.
      const inner = tcpFrame(VIP_LOCAL);
      expect(() =>
        lab.measurePath({ ...caseOf('decap'), frames: (n) => new Array<Buffer>(n).fill(inner) }, 5),
      ).toThrow(/event DECAPSULATED counted 0 times, expected 5/);
    });

    it('throws when the verdict is not the intended one', () => {
      // The hit path's packet where encapsulation (XDP_TX) is expected.
      const hit = tcpFrame(VIP_LOCAL);
      expect(() =>
        lab.measurePath({ ...caseOf('encap'), frames: (n) => new Array<Buffer>(n).fill(hit) }, 3),
      ).toThrow(/expected tx from every call, got 3x pass/);
      // IPIP to another node's address is not decapsulated here.
      const elsewhere = ipipFrame(tcpFrame(VIP_LOCAL), REMOTE_NODE, '192.0.2.2');
      expect(() =>
        lab.measurePath(
          { ...caseOf('decap'), frames: (n) => new Array<Buffer>(n).fill(elsewhere) },
          3,
        ),
      ).toThrow(WrongPathError);
    });
  });
});

describe('datapath benchmark, live-frames half', () => {
  beforeAll(() => requirePrivileges('bench-datapath'));

  it('measures every veth path from xlb counters, checks each, and cleans up', () => {
    const r = measureLive({
      rounds: 1,
      packets: 20_000,
      passPackets: 5_000,
      flows: 16,
      timeLimitSeconds: 5,
      prefix: 'xlblt',
    });
    expect([...r.paths.keys()]).toEqual(['redirect', 'encap', 'pass', 'local', 'notVip']);
    for (const [key, p] of r.paths) {
      const [m] = p.runs;
      expect(m, key).toBeDefined();
      // Batches of 64 never overrun the veth ring: every frame is processed.
      expect(m!.processed, key).toBe(m!.sent);
      expect(p.mpps, key).toBeGreaterThan(0);
    }
    // Redirected (baseline) and encapsulated (xlb) frames all reached the sink.
    expect(r.paths.get('redirect')!.runs[0]!.sinkReceived).toBe(20_000);
    expect(r.paths.get('encap')!.runs[0]!.sinkReceived).toBe(20_000);
    const ratio = liveFigures(r).find((f) => f.target);
    expect(ratio?.value).toBeCloseTo(r.paths.get('encap')!.mpps / r.paths.get('redirect')!.mpps, 9);
    expect(ratio?.target).toEqual({ op: '>=', value: 0.8 });
    expect(leftovers('xlblt')).toEqual([]);
  });

  it('throws when the frames take another path, and still removes its namespaces', () => {
    // The self-DNAT frame is a local hit, not an encapsulation.
    expect(() =>
      measureLive({
        rounds: 1,
        packets: 2_000,
        passPackets: 2_000,
        flows: 4,
        timeLimitSeconds: 5,
        prefix: 'xlblw',
        only: ['encap'],
        frames: { encap: tcpFrame(VIP_SELF) },
      }),
    ).toThrow(/veth encap \(warm-up\): not every packet took the intended path.*LOCAL=/);
    expect(leftovers('xlblw')).toEqual([]);
  });

  it('throws on a DNAT to a real pod: the generator recycles pages the receiver rewrote', () => {
    // The first batch of frames is DNATed; later uses of the same pages carry
    // the pod's address, which is not a VIP. This is why the live paths are
    // fixed points of what xlb writes (live.ts).
    expect(() =>
      measureLive({
        rounds: 1,
        packets: 2_000,
        passPackets: 2_000,
        flows: 4,
        timeLimitSeconds: 5,
        prefix: 'xlblw',
        only: ['local'],
        frames: { local: tcpFrame(VIP_LOCAL) },
      }),
    ).toThrow(/PASS_NOT_VIP=/);
    expect(leftovers('xlblw')).toEqual([]);
  });
});
