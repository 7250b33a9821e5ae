// Namespaces for running the real agent against real traffic. Like the
// datapath testbed, but the node runs no datapath of the test's own: the
// agent under test installs, adopts and uninstalls it.
//
//   client ── router ── node (agent: XDP + tc on eth0) ── br0 ── pods
//
// The router sends the VIP range to the node (a static route; BGP comes
// later). Pods run pod-server; the client runs probe.js.
import { spawn, type ChildProcess } from 'node:child_process';

import type { PodAnswer } from '../../control/topology/pod-server.js';
import { Session } from '../../control/topology/testbed.js';
import { ip, run } from '../../control/topology/ip.js';
import { addPod } from '../../control/topology/pods.js';
import { Topology } from '../../control/topology/topology.js';
import { distScript } from '../../control/paths.js';

export const BED = {
  client: { v4: '192.0.2.10', v6: '2001:db8:c::10' },
  router: {
    clientV4: '192.0.2.1',
    clientV6: '2001:db8:c::1',
    nodeV4: '198.51.100.1',
    nodeV6: '2001:db8:a::1',
  },
  node: { v4: '198.51.100.2', v6: '2001:db8:a::2' },
  pods: {
    v4Gateway: '203.0.113.1',
    v4Base: '203.0.113.',
    v6Gateway: '2001:db8:a0::1',
    v6Base: '2001:db8:a0::',
  },
  vipRangeV4: '192.0.2.128/25',
  vipRangeV6: '2001:db8:f::/64',
} as const;

export { POD_PORTS } from '../../control/topology/pods.js';

export interface BedPod {
  name: string;
  ns: string;
  v4: string;
  v6: string;
}

function sysctls(ns: string, ...settings: string[]): void {
  for (const s of settings) run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', s]);
}

// Forwarding, and no reverse-path filter: replies from a VIP leave the node
// directly (direct server return).
const FORWARDING = [
  'net.ipv4.ip_forward=1',
  'net.ipv6.conf.all.forwarding=1',
  'net.ipv4.conf.all.rp_filter=0',
  'net.ipv4.conf.default.rp_filter=0',
];

export class AgentBed {
  readonly topo = new Topology('xlba');
  client = '';
  router = '';
  node = '';
  readonly pods: BedPod[] = [];

  /** Builds everything, or removes what it built and throws. */
  static async create(podNames: readonly string[]): Promise<AgentBed> {
    const bed = new AgentBed();
    try {
      await bed.build(podNames);
      return bed;
    } catch (e) {
      bed.destroy();
      throw e;
    }
  }

  private async build(podNames: readonly string[]): Promise<void> {
    const t = this.topo;
    this.client = t.addNamespace('client');
    this.router = t.addNamespace('router');
    this.node = t.addNamespace('node');
    sysctls(this.router, ...FORWARDING);
    sysctls(this.node, ...FORWARDING);
    t.addVeth(
      {
        ns: this.client,
        ifname: 'eth0',
        addresses: [`${BED.client.v4}/26`, `${BED.client.v6}/64`],
      },
      {
        ns: this.router,
        ifname: 'client',
        addresses: [`${BED.router.clientV4}/26`, `${BED.router.clientV6}/64`],
      },
    );
    // Real NICs hand XDP complete checksums; a veth would offload them.
    run('ip', ['netns', 'exec', this.client, 'ethtool', '-K', 'eth0', 'tx', 'off']);
    ip('-n', this.client, 'route', 'add', 'default', 'via', BED.router.clientV4);
    ip('-n', this.client, '-6', 'route', 'add', 'default', 'via', BED.router.clientV6);
    t.addVeth(
      {
        ns: this.router,
        ifname: 'node',
        addresses: [`${BED.router.nodeV4}/28`, `${BED.router.nodeV6}/64`],
      },
      { ns: this.node, ifname: 'eth0', addresses: [`${BED.node.v4}/28`, `${BED.node.v6}/64`] },
    );
    ip('-n', this.node, 'route', 'add', 'default', 'via', BED.router.nodeV4);
    ip('-n', this.node, '-6', 'route', 'add', 'default', 'via', BED.router.nodeV6);
    ip('-n', this.router, 'route', 'add', BED.vipRangeV4, 'via', BED.node.v4);
    ip('-n', this.router, '-6', 'route', 'add', BED.vipRangeV6, 'via', BED.node.v6);

    ip('-n', this.node, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', this.node, 'addr', 'add', `${BED.pods.v4Gateway}/27`, 'dev', 'br0');
    ip('-n', this.node, 'addr', 'add', `${BED.pods.v6Gateway}/64`, 'dev', 'br0', 'nodad');
    ip('-n', this.node, 'link', 'set', 'br0', 'up');
    for (const [i, name] of podNames.entries()) {
      const v4 = `${BED.pods.v4Base}${10 + i}`;
      const v6 = `${BED.pods.v6Base}${(16 + i).toString(16)}`;
      const { ns } = await addPod(t, {
        name,
        nodeNs: this.node,
        v4,
        v6,
        v4Gateway: BED.pods.v4Gateway,
        v6Gateway: BED.pods.v6Gateway,
      });
      this.pods.push({ name, ns, v4, v6 });
    }
  }

  pod(name: string): BedPod {
    const p = this.pods.find((x) => x.name === name);
    if (!p) throw new Error(`no pod named ${name}`);
    return p;
  }

  private spawnProbe(args: string[], stdin: 'ignore' | 'pipe'): ChildProcess {
    return spawn(
      'ip',
      [
        'netns',
        'exec',
        this.client,
        process.execPath,
        distScript('control/topology/probe.js'),
        ...args,
      ],
      { stdio: [stdin, 'pipe', 'pipe'] },
    );
  }

  /** One HTTP GET from the client: the pod's answer and the address that answered. */
  http(url: string): Promise<{ status: number; remote: string; body: PodAnswer }> {
    return new Promise((resolve, reject) => {
      const child = this.spawnProbe(['http', url], 'ignore');
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code) =>
        code === 0
          ? resolve(JSON.parse(out) as { status: number; remote: string; body: PodAnswer })
          : reject(new Error(`probe http ${url}: ${out}${err}`.trim())),
      );
    });
  }

  /** A long-lived TCP connection from the client (closed at destroy() at the latest). */
  async session(host: string, port: number): Promise<Session> {
    const child = this.spawnProbe(['session', host, String(port)], 'pipe');
    this.topo.onDestroy('client session', () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const s = new Session(child);
    await s.connected();
    return s;
  }

  /** `ip link` of the node's uplink: shows 'xdp' while a program is attached. */
  uplinkLink(): string {
    return ip('-n', this.node, 'link', 'show', 'dev', 'eth0');
  }

  /** The uplink's tc egress filters, as `tc` prints them. */
  uplinkTcEgress(): string {
    return run('tc', ['-n', this.node, 'filter', 'show', 'dev', 'eth0', 'egress']);
  }

  destroy(): void {
    this.topo.destroy();
  }
}
