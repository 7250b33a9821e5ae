// The live-frames packet generator (bpf/pktgen.c, bench/pktgen/) and the veth
// benchmark harness, with real frames through real veths: exact counts at the
// receiver, flow variety with correct checksums, and no leftovers.
import { execFileSync } from 'node:child_process';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BaselineReceiver, type Receiver } from '../bench/pktgen/baselines.js';
import { buildFrame } from '../bench/pktgen/frame.js';
import { generate } from '../bench/pktgen/generator.js';
import { runVethBench, VethBench } from '../bench/pktgen/veth-bench.js';
import { loadDatapath } from '../control/datapath/load.js';
import { ifIndex, inNetns, xdp } from '../native/index.js';
import {
  dissect,
  eth,
  icmpEcho,
  ipv4,
  ipv6,
  packet,
  payload,
  tcp,
  udp,
} from './support/packet/index.js';
import { requirePrivileges } from './support/privileged.js';

const E = eth({ src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' });
const V4 = { src: '192.0.2.1', dst: '198.51.100.1' };
const V6 = { src: '2001:db8::1', dst: '2001:db8:1::1' };
const SPORT = 40000;

/** A 64-byte UDP/IPv4 frame, the benchmark's. */
const udp64 = (): Buffer => buildFrame({ ...V4, sport: SPORT, dport: 9 });

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n !== '');
}

describe('the live-frames packet generator through a veth', () => {
  let bench: VethBench;

  beforeAll(() => {
    requirePrivileges('pktgen');
    bench = VethBench.create({ prefix: 'xlbpg' });
  });
  afterAll(() => bench?.destroy());

  it("builds the benchmark's frame byte for byte like the test suite's packet builder", () => {
    const body = Buffer.alloc(22);
    for (let i = 0; i < body.length; i++) body[i] = (8 + i) & 0xff;
    expect(udp64().toString('hex')).toBe(
      packet(
        E,
        ipv4({ ...V4, flags: ['DF'] }),
        udp({ sport: SPORT, dport: 9 }),
        payload(body),
      ).toString('hex'),
    );
    const tcpBody = Buffer.alloc(6);
    for (let i = 0; i < tcpBody.length; i++) tcpBody[i] = 20 + i;
    expect(
      buildFrame({ ...V6, sport: 1, dport: 2, protocol: 'tcp', size: 80 }).toString('hex'),
    ).toBe(
      packet(
        E,
        ipv6(V6),
        tcp({ sport: 1, dport: 2, seq: 1, flags: ['SYN'] }),
        payload(tcpBody),
      ).toString('hex'),
    );
  });

  // Why exactly: each live-frames batch is queued on the veth's 256-entry
  // ring in one go, and the dut's NAPI drains it in the softirq that runs on
  // the same CPU as soon as the batch ends, up to 64 frames (its weight) per
  // poll. With batches of at most 64 (the default) the ring is empty before
  // every batch, so no frame can be refused and none is lost.
  it('pushes 100,000 frames into a dut running bench_drop, which counts exactly 100,000', () => {
    using drop = BaselineReceiver.load('drop');
    const ifindex = ifindexOf(bench.dut, bench.dutIn);
    inNetns(bench.dut, () => xdp.attach(ifindex, drop.program, 'native'));
    try {
      const r = generate({ ns: bench.gen, ifname: bench.genIf, frame: udp64(), packets: 100_000 });
      expect(r.sent).toBe(100_000);
      expect(r.seconds).toBeGreaterThan(0);
    } finally {
      inNetns(bench.dut, () => xdp.detach(ifindex, 'native'));
    }
    expect(drop.processed()).toBe(100_000);
  });

  // Why rates come from the receiver's counter: when the peer has no XDP
  // program the veth does not accept redirected frames at all, test_run still
  // succeeds, and no interface counter moves (only the xdp_redirect_err
  // tracepoint sees it). The generator's own count is what it tried to send.
  it('sends into a void when the dut has no XDP program, and nothing says so', () => {
    const stats = (ns: string): string =>
      JSON.stringify(
        (
          JSON.parse(
            execFileSync('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', 'eth0'], {
              encoding: 'utf8',
            }),
          ) as Array<{ stats64: unknown }>
        )[0]!.stats64,
      );
    const before = [stats(bench.gen), stats(bench.dut)];
    const r = generate({ ns: bench.gen, ifname: bench.genIf, frame: udp64(), packets: 10_000 });
    expect(r.sent).toBe(10_000);
    expect([stats(bench.gen), stats(bench.dut)]).toEqual(before);
  });

  it('measures through the harness: processed, refused and rate from the receiver counter', () => {
    using drop = BaselineReceiver.load('drop');
    const m = bench.measure(drop, { frame: udp64(), packets: 100_000 });
    expect(m).toMatchObject({ sent: 100_000, processed: 100_000, refused: 0, sinkReceived: 0 });
    expect(m.pps).toBeCloseTo(m.processed / m.seconds, 3);
    expect(m.pps).toBeGreaterThan(100_000); // sanity: live frames are fast, even in CI
    // The harness detached the receiver again.
    expect(inNetns(bench.dut, () => xdp.query(ifindexOf(bench.dut, bench.dutIn))).progId).toBe(0);
  });

  it('restores the template on every frame, so a receiver that rewrites frames sees the original each time', () => {
    // xlb DNATs every frame to a pod: without the restore, a recycled page
    // would come back with the pod's address, no longer a VIP.
    using dp = loadDatapath({ nodeIPv4: '192.0.2.1' });
    dp.maps.setVip('203.0.113.10', 1);
    dp.maps.setFrontend({ vip: '203.0.113.10', port: 80, proto: 'TCP' }, { id: 1 });
    dp.maps.setBackend(1, {
      address: '192.0.2.65',
      port: 8080,
      nodeAddress: '192.0.2.1',
      state: 'active',
      local: true,
    });
    dp.maps.installMaglevTable(1, Array<number>(251).fill(1));
    const receiver: Receiver = {
      program: dp.xdp,
      processed: () =>
        Number([...dp.maps.outcomes(), ...dp.maps.drops()].reduce((n, r) => n + r.packets, 0n)),
    };
    const outcome = (name: string): bigint =>
      dp.maps.outcomes().find((r) => r.name === name)!.packets;
    const frame = buildFrame({
      src: '198.51.100.7',
      dst: '203.0.113.10',
      sport: 40000,
      dport: 80,
      protocol: 'tcp',
    });

    const restored = bench.measure(receiver, { frame, packets: 20_000, flows: 8, restore: true });
    expect(restored.processed).toBe(20_000);
    expect(outcome('LOCAL')).toBe(20_000n);
    expect(outcome('PASS_NOT_VIP')).toBe(0n);

    const raw = bench.measure(receiver, { frame, packets: 20_000, flows: 8 });
    expect(raw.processed).toBe(20_000);
    expect(outcome('PASS_NOT_VIP')).toBeGreaterThan(0n); // the page pool's rewritten frames
  });

  it('redirects through the dut into the sink: every frame is received there', () => {
    using redirect = BaselineReceiver.load('redirect', { redirectIfindex: bench.dutOutIfindex });
    const m = bench.measure(redirect, { frame: udp64(), packets: 100_000 });
    expect(m).toMatchObject({
      sent: 100_000,
      processed: 100_000,
      refused: 0,
      sinkReceived: 100_000,
    });
  });

  // Batches larger than the NAPI weight can outrun a slow receiver (XDP_PASS
  // builds an skb per frame and enters the stack): the ring fills and the
  // veth refuses frames. Then the kernel's own drop count closes the books.
  it('accounts for every frame when the receiver falls behind: processed + refused = sent', () => {
    using pass = BaselineReceiver.load('pass');
    const m = bench.measure(pass, { frame: udp64(), packets: 300_000, batchSize: 256 });
    expect(m.sent).toBe(300_000);
    expect(m.processed + m.refused).toBe(300_000);
  });

  const flowCases: Array<{ name: string; frame: Buffer; l4: 'udp' | 'tcp' }> = [
    {
      name: 'UDP/IPv4',
      frame: packet(E, ipv4(V4), udp({ sport: SPORT, dport: 53 }), payload('flows, flows')),
      l4: 'udp',
    },
    {
      name: 'TCP/IPv4',
      frame: packet(E, ipv4(V4), tcp({ sport: SPORT, dport: 80, flags: ['SYN'] }), payload('x')),
      l4: 'tcp',
    },
    {
      name: 'UDP/IPv6',
      frame: packet(E, ipv6(V6), udp({ sport: SPORT, dport: 53 }), payload('flows')),
      l4: 'udp',
    },
    {
      name: 'TCP/IPv6',
      frame: packet(E, ipv6(V6), tcp({ sport: SPORT, dport: 443, flags: ['ACK'] }), payload('y')),
      l4: 'tcp',
    },
  ];

  /** Runs 256 frames with 16 flows into bench_pass with capture on; returns the captured frames. */
  function captureFlows(frame: Buffer): Buffer[] {
    using pass = BaselineReceiver.load('pass', { captureSlots: 256 });
    const m = bench.measure(pass, { frame, packets: 256, flows: 16 });
    expect(m).toMatchObject({ sent: 256, processed: 256 });
    const frames = pass.captured().map((c) => {
      expect(c.length).toBe(frame.length);
      return c.bytes;
    });
    // One slot per frame; only a migration to another CPU half-way (each CPU
    // counts on its own) could make slots be written twice.
    expect(frames.length).toBeGreaterThanOrEqual(128);
    return frames;
  }

  for (const c of flowCases) {
    it(`spreads ${c.name} frames over 16 source ports with correct checksums`, () => {
      const frames = captureFlows(c.frame);
      const ports = new Set<number>();
      for (const f of frames) {
        const fields = dissect(f);
        const field = (path: string) => fields.find((x) => x.path === path);
        const port = field(`${c.l4}.sport`)?.value as number;
        ports.add(port);
        expect(port).toBeGreaterThanOrEqual(SPORT);
        expect(port).toBeLessThan(SPORT + 16);
        // Checksums verify: the L4 one after the rewrite, the IPv4 header's untouched.
        for (const x of fields.filter((x) => x.path.endsWith('checksum'))) {
          expect(x.note, `${x.path} of a frame with source port ${port}`).toMatch(/^correct/);
        }
        // Nothing else changed: the frame equals the template with that port.
        const expected = Buffer.from(c.frame);
        const sportAt = field(`${c.l4}.sport`)!.offset;
        const checkAt = field(`${c.l4}.checksum`)!.offset;
        expected.writeUInt16BE(port, sportAt);
        f.copy(expected, checkAt, checkAt, checkAt + 2);
        expect(f.toString('hex')).toBe(expected.toString('hex'));
      }
      expect([...ports].sort((a, b) => a - b)).toEqual(
        Array.from({ length: 16 }, (_, i) => SPORT + i),
      );
    });
  }

  it('keeps an IPv4 UDP checksum of 0 ("none") at 0 and leaves non-TCP/UDP frames alone', () => {
    const none = packet(E, ipv4(V4), udp({ sport: SPORT, dport: 53, checksum: 0 }), payload('z'));
    const frames = captureFlows(none);
    const ports = new Set(frames.map((f) => f.readUInt16BE(34)));
    expect(ports.size).toBe(16);
    for (const f of frames) expect(f.readUInt16BE(40)).toBe(0);

    const ping = packet(E, ipv4(V4), icmpEcho({ id: 7, seq: 1 }), payload('ping'));
    for (const f of captureFlows(ping)) expect(f.toString('hex')).toBe(ping.toString('hex'));
  });

  it('refuses settings the kernel or the port space cannot honour', () => {
    const frame = udp64();
    expect(() =>
      generate({ ns: bench.gen, ifname: bench.genIf, frame, packets: 1, batchSize: 257 }),
    ).toThrow(/batchSize/);
    expect(() =>
      generate({ ns: bench.gen, ifname: bench.genIf, frame, packets: 1, flows: 30000 }),
    ).toThrow(/run past 65535/);
    expect(() =>
      generate({ ns: bench.gen, ifname: bench.genIf, frame: Buffer.alloc(10), packets: 1 }),
    ).toThrow(/no Ethernet header/);
  });
});

describe('the veth harness cleans up after itself', () => {
  beforeAll(() => requirePrivileges('pktgen'));

  it('removes its namespaces when making the receiver throws', () => {
    let made: string[] = [];
    expect(() =>
      runVethBench(
        (b) => {
          made = [b.gen, b.dut, b.sink];
          throw new Error('no receiver today');
        },
        { frame: udp64(), packets: 1000 },
        { prefix: 'xlbpc' },
      ),
    ).toThrow('no receiver today');
    expect(made).toHaveLength(3);
    const left = namespaces();
    for (const ns of made) expect(left).not.toContain(ns);
  });

  it('detaches, closes and removes everything when reading the receiver throws mid-run', () => {
    let made: string[] = [];
    let closed = false;
    let reads = 0;
    expect(() =>
      runVethBench(
        (b) => {
          made = [b.gen, b.dut, b.sink];
          const drop = BaselineReceiver.load('drop');
          const receiver: Receiver & { close(): void } = {
            program: drop.program,
            processed: () => {
              // The first read is the harness's "before"; the second comes
              // after the traffic, with the program attached.
              if (++reads > 1) throw new Error('counter unreadable');
              return drop.processed();
            },
            close: () => {
              drop.close();
              closed = true;
            },
          };
          return receiver;
        },
        { frame: udp64(), packets: 1000 },
        { prefix: 'xlbpc' },
      ),
    ).toThrow('counter unreadable');
    expect(reads).toBe(2);
    expect(closed).toBe(true);
    const left = namespaces();
    for (const ns of made) expect(left).not.toContain(ns);
  });
});

function ifindexOf(ns: string, ifname: string): number {
  return inNetns(ns, () => ifIndex(ifname));
}
