// Namespaces for running the real agent against real traffic. Like the
// datapath testbed, but the node runs no datapath of the test's own: the
// agent under test installs, adopts and uninstalls it.
//
//   client ── router ── node (agent: XDP + tc on eth0) ── br0 ── pods
//
// The router sends the VIP range to the node (a static route; BGP comes
// later). Pods run pod-server; the client runs probe.js.
import type { ChildProcess } from 'node:child_process';

import type { PodAnswer } from './pod-server.js';
import { childOutput } from './child-output.js';
import { Session } from './testbed.js';
import { ip, run } from './ip.js';
import { addPod } from './pods.js';
import { Topology } from './topology.js';
import { VethPass } from './veth-pass.js';
import { spawnProbe } from './probe-run.js';

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

export { POD_PORTS } from './pods.js';

/** One HTTP answer as the client saw it: status, the address that answered, the pod's body. */
export interface ProbeAnswer {
  status: number;
  remote: string;
  body: PodAnswer;
}

export interface ClusterPod {
  name: string;
  ns: string;
  v4: string;
  v6: string;
  /** Index of the node it runs on. */
  node: number;
}

/**
 * Addresses of node i (node 0 is BED.node): uplink /28s and pod /27s side by
 * side, so every node's subnets are distinct and routable through the router.
 */
export function nodeAddresses(i: number) {
  return {
    name: `node-${String.fromCharCode(97 + i)}`,
    v4: `198.51.100.${16 * i + 2}`,
    v6: `2001:db8:${(0xa + i).toString(16)}::2`,
    routerV4: `198.51.100.${16 * i + 1}`,
    routerV6: `2001:db8:${(0xa + i).toString(16)}::1`,
    podV4Gateway: `203.0.113.${32 * i + 1}`,
    podV4: (k: number) => `203.0.113.${32 * i + 10 + k}`,
    podV6Gateway: `2001:db8:${(0xa0 + i).toString(16)}::1`,
    podV6: (k: number) => `2001:db8:${(0xa0 + i).toString(16)}::${(16 + k).toString(16)}`,
  };
}

export interface ClusterOptions {
  /** Nodes, each with its own uplink to the router (default 1). */
  nodes?: number;
  /** Namespace name prefix (default 'xlba'); the demo uses its own to find leftovers. */
  prefix?: string;
  /** A static route for the VIP range via the first node (default true); false when BGP routes. */
  staticVipRoute?: boolean;
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

export class ClusterBed {
  readonly topo: Topology;
  private readonly vethPass: VethPass;
  private readonly podServers = new Map<string, ChildProcess>();
  client = '';
  router = '';
  /** The first node's namespace. */
  node = '';
  /** Every node's namespace, by index. */
  readonly nodes: string[] = [];
  readonly pods: ClusterPod[] = [];

  private constructor(prefix: string) {
    this.topo = new Topology(prefix);
    this.vethPass = new VethPass(this.topo);
  }

  /**
   * Builds everything, or removes what it built and throws. Pods go to the
   * nodes in turn (`name` alone), or to the node given.
   */
  static async create(
    pods: ReadonlyArray<string | { name: string; node: number }>,
    options: ClusterOptions = {},
  ): Promise<ClusterBed> {
    const bed = new ClusterBed(options.prefix ?? 'xlba');
    try {
      await bed.build(
        pods.map((p, i) =>
          typeof p === 'string' ? { name: p, node: i % (options.nodes ?? 1) } : p,
        ),
        options.nodes ?? 1,
        options.staticVipRoute ?? true,
      );
      return bed;
    } catch (e) {
      bed.destroy();
      throw e;
    }
  }

  private async build(
    pods: ReadonlyArray<{ name: string; node: number }>,
    nodeCount: number,
    staticVipRoute: boolean,
  ): Promise<void> {
    const t = this.topo;
    this.client = t.addNamespace('client');
    this.router = t.addNamespace('router');
    sysctls(this.router, ...FORWARDING);
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
    for (let i = 0; i < nodeCount; i++) {
      const a = nodeAddresses(i);
      const ns = t.addNamespace(i === 0 ? 'node' : `node${i}`);
      this.nodes.push(ns);
      sysctls(ns, ...FORWARDING);
      t.addVeth(
        {
          ns: this.router,
          ifname: i === 0 ? 'node' : `node${i}`,
          addresses: [`${a.routerV4}/28`, `${a.routerV6}/64`],
        },
        { ns, ifname: 'eth0', addresses: [`${a.v4}/28`, `${a.v6}/64`] },
      );
      // Another node's traffic arrives encapsulated, sent with XDP_TX.
      if (nodeCount > 1) this.vethPass.attach(this.router, i === 0 ? 'node' : `node${i}`);
      ip('-n', ns, 'route', 'add', 'default', 'via', a.routerV4);
      ip('-n', ns, '-6', 'route', 'add', 'default', 'via', a.routerV6);
      ip('-n', ns, 'link', 'add', 'br0', 'type', 'bridge');
      ip('-n', ns, 'addr', 'add', `${a.podV4Gateway}/27`, 'dev', 'br0');
      ip('-n', ns, 'addr', 'add', `${a.podV6Gateway}/64`, 'dev', 'br0', 'nodad');
      ip('-n', ns, 'link', 'set', 'br0', 'up');
    }
    this.node = this.nodes[0]!;
    // Until BGP says otherwise, the VIPs are reached through the first node.
    if (staticVipRoute) {
      ip('-n', this.router, 'route', 'add', BED.vipRangeV4, 'via', BED.node.v4);
      ip('-n', this.router, '-6', 'route', 'add', BED.vipRangeV6, 'via', BED.node.v6);
    }

    const perNode = new Map<number, number>();
    for (const { name, node } of pods) {
      const a = nodeAddresses(node);
      const k = perNode.get(node) ?? 0;
      perNode.set(node, k + 1);
      const v4 = a.podV4(k);
      const v6 = a.podV6(k);
      const { ns, child } = await addPod(t, {
        name,
        nodeNs: this.nodes[node]!,
        v4,
        v6,
        v4Gateway: a.podV4Gateway,
        v6Gateway: a.podV6Gateway,
      });
      this.pods.push({ name, ns, v4, v6, node });
      this.podServers.set(name, child);
    }
  }

  /** Stops a pod's server, as a deleted pod's container stops; its namespace stays until destroy(). */
  stopPod(name: string): void {
    this.pod(name);
    const child = this.podServers.get(name);
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }

  /** Takes node i's uplink down, as a node that dies or loses its cable. */
  uplinkDown(i: number): void {
    const ns = this.nodes[i];
    if (ns === undefined) throw new Error(`no node ${i}`);
    ip('-n', ns, 'link', 'set', 'eth0', 'down');
  }

  pod(name: string): ClusterPod {
    const p = this.pods.find((x) => x.name === name);
    if (!p) throw new Error(`no pod named ${name}`);
    return p;
  }

  /** One HTTP GET from the client: the pod's answer and the address that answered. */
  async http(url: string): Promise<ProbeAnswer> {
    const { code, stdout, stderr } = await childOutput(
      spawnProbe(this.client, ['http', url], 'ignore'),
    );
    if (code !== 0) throw new Error(`probe http ${url}: ${stdout}${stderr}`.trim());
    try {
      return JSON.parse(stdout) as ProbeAnswer;
    } catch {
      throw new Error(
        `probe http ${url}: not an answer: ${JSON.stringify(stdout)} ${stderr}`.trim(),
      );
    }
  }

  /**
   * `count` HTTP GETs from the client, one connection each, from one probe
   * process: each answer, or the error that request met.
   */
  async httpMany(url: string, count: number): Promise<Array<ProbeAnswer | { error: string }>> {
    const { code, stdout, stderr } = await childOutput(
      spawnProbe(this.client, ['burst', url, String(count)], 'ignore'),
    );
    const lines = stdout.split('\n').filter(Boolean);
    if (code !== 0 || lines.length !== count)
      throw new Error(`probe burst ${url} ${count}: ${stdout}${stderr}`.trim());
    return lines.map((l) => JSON.parse(l) as ProbeAnswer | { error: string });
  }

  /** A long-lived TCP connection from the client (closed at destroy() at the latest). */
  async session(host: string, port: number): Promise<Session> {
    const child = spawnProbe(this.client, ['session', host, String(port)], 'pipe');
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
