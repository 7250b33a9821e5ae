// The foundation demo: two network namespaces joined by a veth, xlb's XDP
// program on the receiving end, real traffic across, and the per-CPU counters
// read back through the addon from a pinned map. Everything it builds is torn
// down at the end, also on failure or Ctrl-C.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';

import { BpfMap, ifIndex, inNetns, xdp } from '../../native/index.js';
import { XlbOutcome, type OutcomeName } from '../datapath/abi.js';
import { loadDatapath } from '../datapath/load.js';
import { readSlots, type SlotRow } from '../datapath/stats.js';
import { bpfObjectPath, distScript } from '../paths.js';
import { BPFFS } from '../system/bpffs.js';
import { preflight } from '../system/preflight.js';
import { Topology } from '../topology/topology.js';
import { renderTable } from '../cli/table.js';

export interface DemoTraffic {
  pings: number;
  datagrams: number;
  connections: number;
}

export interface DemoResult {
  rows: SlotRow<OutcomeName>[];
  /** Counters below what the traffic must have produced; empty when all is well. */
  shortfalls: string[];
}

const CLIENT = { v4: '192.0.2.1', v6: '2001:db8::1' };
const NODE = { v4: '192.0.2.2', v6: '2001:db8::2' };
const DISCARD_PORT = 9;

/**
 * The least each outcome counter must show for the traffic sent: no VIP is
 * configured, so all IP traffic passes as not-for-a-VIP (the kernel adds
 * ARP, neighbour discovery and retries on top).
 */
export function expectedMinimums(t: DemoTraffic): Partial<Record<OutcomeName, number>> {
  return {
    PASS_NOT_VIP: 2 * (t.pings + t.datagrams + t.connections),
    PASS_NOT_IP: 1, // ARP
  };
}

function sendTraffic(ns: string, kind: 'udp' | 'tcp', host: string, count: number): Promise<void> {
  const script = distScript('control/demo/send-traffic.js');
  return new Promise((resolve, reject) => {
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        script,
        kind,
        host,
        String(DISCARD_PORT),
        String(count),
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${kind} traffic to ${host} failed: ${stderr.trim()}`)),
    );
  });
}

function ping(ns: string, host: string, count: number): void {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', ns, 'ping', '-q', '-c', String(count), '-i', '0.2', '-W', '2', host],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0)
    throw new Error(`ping ${host} from ${ns} failed: ${r.stdout}${r.stderr}`.trim());
}

export async function runCountersDemo(
  print: (line: string) => void,
  traffic: DemoTraffic = { pings: 5, datagrams: 20, connections: 5 },
): Promise<DemoResult> {
  preflight('xlb demo', ['ip', 'ping']);
  const topo = new Topology('xlbd');
  const onSignal = (signal: NodeJS.Signals): void => {
    print(`\n${signal}: cleaning up`);
    topo.destroy();
    process.exit(130);
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    print('[1/5] network namespaces joined by a veth pair');
    const client = topo.addNamespace('client');
    const node = topo.addNamespace('node');
    topo.addVeth(
      { ns: client, ifname: 'eth0', addresses: [`${CLIENT.v4}/24`, `${CLIENT.v6}/64`] },
      { ns: node, ifname: 'eth0', addresses: [`${NODE.v4}/24`, `${NODE.v6}/64`] },
    );
    print(
      `      ${client} eth0 ${CLIENT.v4} ${CLIENT.v6}  <->  ${node} eth0 ${NODE.v4} ${NODE.v6}`,
    );

    print('[2/5] xlb XDP program loaded and attached to the receiving veth');
    const datapath = loadDatapath({ nodeIPv4: NODE.v4, nodeIPv6: NODE.v6 });
    topo.onDestroy('close datapath', () => datapath.close());
    const prog = datapath.xdp;
    const ifindex = inNetns(node, () => ifIndex('eth0'));
    inNetns(node, () => xdp.attach(ifindex, prog, 'native'));
    topo.onDestroy('detach XDP', () => inNetns(node, () => xdp.detach(ifindex, 'native')));
    const pinDir = `${BPFFS}/xlb-demo-${topo.tag}`;
    mkdirSync(pinDir);
    topo.onDestroy(`remove ${pinDir}`, () => rmSync(pinDir, { recursive: true, force: true }));
    datapath.maps.map('xlb_outcomes').pin(`${pinDir}/xlb_outcomes`);
    print(
      `      ${bpfObjectPath('xlb_xdp')}: program ${prog.info.name} id ${prog.info.id}, native XDP on ${node}/eth0 (ifindex ${ifindex})`,
    );
    print(`      counters pinned at ${pinDir}/xlb_outcomes`);

    print('[3/5] real traffic from the client');
    ping(client, NODE.v4, traffic.pings);
    ping(client, NODE.v6, traffic.pings);
    await sendTraffic(client, 'udp', NODE.v4, traffic.datagrams);
    await sendTraffic(client, 'udp', NODE.v6, traffic.datagrams);
    await sendTraffic(client, 'tcp', NODE.v4, traffic.connections);
    await sendTraffic(client, 'tcp', NODE.v6, traffic.connections);
    print(
      `      ${traffic.pings} ICMP echo each over IPv4 and IPv6, ${traffic.datagrams} UDP datagrams each, ` +
        `${traffic.connections} TCP connection attempts each (port ${DISCARD_PORT}, refused)`,
    );

    print('[4/5] per-CPU counters, read through the addon from the pinned map');
    let rows: SlotRow<OutcomeName>[];
    {
      using pinned = BpfMap.openPinned(`${pinDir}/xlb_outcomes`);
      rows = readSlots(pinned, XlbOutcome);
    }
    const cpus = rows[0]?.perCpu.length ?? 0;
    const header = [
      'counter',
      ...Array.from({ length: cpus }, (_, i) => `cpu${i} pkts`),
      'packets',
      'bytes',
    ];
    const body = rows.map((r) => [
      r.name.toLowerCase(),
      ...r.perCpu.map((c) => String(c.packets)),
      String(r.packets),
      String(r.bytes),
    ]);
    for (const line of renderTable(header, body)) print(`      ${line}`);

    const minimums = expectedMinimums(traffic);
    const shortfalls = rows
      .filter((r) => r.packets < BigInt(minimums[r.name] ?? 0))
      .map(
        (r) =>
          `${r.name.toLowerCase()}: ${r.packets} packets, expected at least ${minimums[r.name]}`,
      );
    print(
      shortfalls.length === 0
        ? '      every counter shows the traffic that was sent'
        : `      MISSING: ${shortfalls.join('; ')}`,
    );
    return { rows, shortfalls };
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    topo.destroy();
    print('[5/5] cleaned up: XDP detached, pins removed, namespaces deleted');
  }
}
