// Cost of xlb's XDP program per packet, measured in the kernel with
// BPF_PROG_TEST_RUN, against the smallest useful XDP program (one per-CPU
// counter, then pass) as the baseline, in the same run on the same frame.
import { loadDatapath } from '../control/datapath/load.js';
import { bpfObjectPath } from '../control/paths.js';
import { requireRoot } from '../control/system/privileges.js';
import { BpfObject, type BpfProgram } from '../native/index.js';
import type { Figure } from './results.js';

const REPEAT = 1_000_000;
const ROUNDS = 5;

/** A 64-byte Ethernet + IPv4 + UDP frame (documentation addresses). */
function udpFrame(): Buffer {
  const f = Buffer.alloc(64);
  f.write('020000000002020000000001', 0, 'hex');
  f.writeUInt16BE(0x0800, 12);
  f.write('4500003200004000401100007f000001', 14, 'hex');
  f.set([192, 0, 2, 1], 26);
  f.set([198, 51, 100, 10], 30);
  f.writeUInt16BE(40000, 34);
  f.writeUInt16BE(80, 36);
  f.writeUInt16BE(30, 38);
  return f;
}

/** Median of several runs: the machine's other work shows up as outliers. */
async function nsPerPacket(prog: BpfProgram, frame: Buffer): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS; i++)
    samples.push((await prog.testRunAsync({ data: frame, repeat: REPEAT })).durationNs);
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

export async function run(): Promise<Figure[]> {
  requireRoot('the xdp-parse benchmark');
  using datapath = loadDatapath();
  const xlb = datapath.xdp;
  using baseObj = BpfObject.open(bpfObjectPath('test/fixture'));
  baseObj.load();
  using base = baseObj.program('fixture_xdp');
  const frame = udpFrame();
  const baseline = await nsPerPacket(base, frame);
  const value = await nsPerPacket(xlb, frame);
  return [
    { name: 'xlb_xdp classify+count, 64-byte UDP/IPv4', value, unit: 'ns/packet', baseline },
    {
      name: 'xlb_xdp single-core rate',
      value: 1000 / value,
      unit: 'Mpps',
      baseline: 1000 / baseline,
    },
  ];
}
