// A small cluster's load-balancing path in network namespaces, with xlb's
// real datapath on each node:
//
//   client ── router ──┬── node-a (XDP + tc on eth0) ── br0 ── pods
//                      └── node-b (XDP + tc on eth0) ── br0 ── pods
//
// The router sends VIP traffic to node-a (a static route; BGP comes later).
// Pods are namespaces on a node's bridge running pod-server. Every address is
// from the documentation ranges. Tests build it; so will the demo.
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import readline from 'node:readline';

import { ifIndex, inNetns, tc, xdp } from '../../native/index.js';
import { openDatapath, type OpenedDatapath } from '../datapath/lifecycle.js';
import {
  loadDatapath,
  type Datapath,
  type DatapathSettings,
  type MapSizes,
} from '../datapath/load.js';
import type { PodAnswer } from './pod-server.js';
import { childOutput } from './child-output.js';
import { ip, run } from './ip.js';
import { addPod } from './pods.js';
import { Topology } from './topology.js';
import { VethPass } from './veth-pass.js';
import { spawnProbe } from './probe-run.js';

export type NodeName = 'a' | 'b';

export const ADDRESSES = {
  client: { v4: '192.0.2.10', v6: '2001:db8:c::10' },
  routerClientSide: { v4: '192.0.2.1', v6: '2001:db8:c::1' },
  node: {
    a: {
      v4: '198.51.100.2',
      v6: '2001:db8:a::2',
      routerV4: '198.51.100.1',
      routerV6: '2001:db8:a::1',
    },
    b: {
      v4: '198.51.100.18',
      v6: '2001:db8:b::2',
      routerV4: '198.51.100.17',
      routerV6: '2001:db8:b::1',
    },
  },
  /** Pod subnets per node: gateway .1 / ::1 on the node's bridge. */
  pods: {
    a: {
      v4: '203.0.113.0/27',
      v4Gateway: '203.0.113.1',
      v4Base: '203.0.113.',
      v4First: 2,
      v6Prefix: '2001:db8:a0::',
    },
    b: {
      v4: '203.0.113.32/27',
      v4Gateway: '203.0.113.33',
      v4Base: '203.0.113.',
      v4First: 34,
      v6Prefix: '2001:db8:b0::',
    },
  },
  vipRangeV4: '192.0.2.128/25',
  vipRangeV6: '2001:db8:f::/64',
} as const;

export { POD_PORTS } from './pods.js';

export interface TestbedNode {
  name: NodeName;
  ns: string;
  v4: string;
  v6: string;
  /** The node's datapath as this process holds it (after crashAgent, closed). */
  datapath: Datapath;
  uplinkIfindex: number;
  settings: Partial<DatapathSettings>;
  /** With `pinDirPrefix`: where the datapath is pinned, and the agent's handle on it. */
  pinDir?: string;
  opened?: OpenedDatapath;
}

export interface TestbedPod {
  name: string;
  node: NodeName;
  ns: string;
  v4: string;
  v6: string;
}

export interface TestbedOptions {
  pods: ReadonlyArray<{ name: string; node: NodeName }>;
  hashSeed?: number;
  mtu?: number;
  /**
   * Open each node's datapath the way the agent does (openDatapath, pinned
   * under `<pinDirPrefix>-<node>`, e.g. /sys/fs/bpf/xlb-test-1234) instead of
   * loading and attaching it directly, so tests can crash and restart agents.
   */
  pinDirPrefix?: string;
}

/** Sysctls every forwarding namespace needs: forward, and no reverse-path filter
 * (replies from a VIP legitimately arrive from a node the VIP route does not
 * point at: direct server return). */
function forwarding(ns: string): void {
  for (const s of [
    'net.ipv4.ip_forward=1',
    'net.ipv6.conf.all.forwarding=1',
    'net.ipv4.conf.all.rp_filter=0',
    'net.ipv4.conf.default.rp_filter=0',
  ]) {
    run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', s]);
  }
}

function ethtool(ns: string, ifname: string, ...settings: string[]): void {
  run('ip', ['netns', 'exec', ns, 'ethtool', '-K', ifname, ...settings]);
}

function openAgent(
  pinDir: string,
  settings: Partial<DatapathSettings>,
  uplinkIfindex: number,
  ns: string,
  sizes?: MapSizes,
): OpenedDatapath {
  return openDatapath({
    pinDir,
    settings,
    uplink: uplinkIfindex,
    netns: ns,
    ...(sizes ? { sizes } : {}),
  });
}

export class Testbed implements Disposable {
  readonly topo: Topology;
  private readonly vethPass: VethPass;
  readonly client: string;
  readonly router: string;
  readonly nodes = {} as Record<NodeName, TestbedNode>;
  readonly pods: TestbedPod[] = [];
  private readonly processes: ChildProcess[] = [];

  private constructor() {
    this.topo = new Topology('xlbe');
    this.vethPass = new VethPass(this.topo);
    this.client = '';
    this.router = '';
  }

  static async create(options: TestbedOptions): Promise<Testbed> {
    const bed = new Testbed();
    try {
      await bed.build(options);
      return bed;
    } catch (e) {
      bed.destroy();
      throw e;
    }
  }

  private async build(options: TestbedOptions): Promise<void> {
    const t = this.topo;
    const self = this as { client: string; router: string };
    self.client = t.addNamespace('client');
    self.router = t.addNamespace('router');
    forwarding(this.router);
    const A = ADDRESSES;
    t.addVeth(
      { ns: this.client, ifname: 'eth0', addresses: [`${A.client.v4}/26`, `${A.client.v6}/64`] },
      {
        ns: this.router,
        ifname: 'client',
        addresses: [`${A.routerClientSide.v4}/26`, `${A.routerClientSide.v6}/64`],
      },
    );
    // Real NICs hand XDP complete checksums; a veth from a local stack
    // would offload them, so the client computes them itself.
    ethtool(this.client, 'eth0', 'tx', 'off');
    ip('-n', this.client, 'route', 'add', 'default', 'via', A.routerClientSide.v4);
    ip('-n', this.client, '-6', 'route', 'add', 'default', 'via', A.routerClientSide.v6);

    for (const name of ['a', 'b'] as const) {
      const n = A.node[name];
      const ns = t.addNamespace(`node-${name}`);
      forwarding(ns);
      t.addVeth(
        {
          ns: this.router,
          ifname: `node-${name}`,
          addresses: [`${n.routerV4}/28`, `${n.routerV6}/64`],
        },
        { ns, ifname: 'eth0', addresses: [`${n.v4}/28`, `${n.v6}/64`] },
      );
      // Frames a node sends with XDP_TX reach the router's veth only when an
      // XDP program runs there.
      this.vethPass.attach(this.router, `node-${name}`);
      ip('-n', ns, 'route', 'add', 'default', 'via', n.routerV4);
      ip('-n', ns, '-6', 'route', 'add', 'default', 'via', n.routerV6);
      const p = A.pods[name];
      ip('-n', ns, 'link', 'add', 'br0', 'type', 'bridge');
      ip('-n', ns, 'addr', 'add', `${p.v4Gateway}/27`, 'dev', 'br0');
      ip('-n', ns, 'addr', 'add', `${p.v6Prefix}1/64`, 'dev', 'br0', 'nodad');
      ip('-n', ns, 'link', 'set', 'br0', 'up');

      const settings: Partial<DatapathSettings> = {
        hashSeed: options.hashSeed ?? 0x0bad5eed,
        mtu: options.mtu ?? 1500,
        nodeIPv4: n.v4,
        nodeIPv6: n.v6,
      };
      const uplinkIfindex = inNetns(ns, () => ifIndex('eth0'));
      if (options.pinDirPrefix !== undefined) {
        const pinDir = `${options.pinDirPrefix}-${name}`;
        // Whatever agent holds it last: detach, unpin, also after a failure.
        t.onDestroy(`datapath of node-${name}`, () => {
          try {
            (this.nodes[name] as TestbedNode | undefined)?.opened?.close({ detach: true });
          } finally {
            for (const dir of [pinDir, `${pinDir}-next`, `${pinDir}-old`])
              rmSync(dir, { recursive: true, force: true });
          }
        });
        const opened = openAgent(pinDir, settings, uplinkIfindex, ns);
        this.nodes[name] = {
          name,
          ns,
          v4: n.v4,
          v6: n.v6,
          datapath: opened.datapath,
          uplinkIfindex,
          settings,
          pinDir,
          opened,
        };
        continue;
      }
      const datapath = loadDatapath(settings);
      t.onDestroy(`datapath of node-${name}`, () => datapath.close());
      inNetns(ns, () => xdp.attach(uplinkIfindex, datapath.xdp, 'native'));
      inNetns(ns, () => tc.attach(uplinkIfindex, 'egress', datapath.tc));
      this.nodes[name] = { name, ns, v4: n.v4, v6: n.v6, datapath, uplinkIfindex, settings };
    }
    ip('-n', this.router, 'route', 'add', A.vipRangeV4, 'via', A.node.a.v4);
    ip('-n', this.router, '-6', 'route', 'add', A.vipRangeV6, 'via', A.node.a.v6);

    const perNode: Record<NodeName, number> = { a: 0, b: 0 };
    for (const spec of options.pods) {
      const i = perNode[spec.node]++;
      const p = A.pods[spec.node];
      const v4 = `${p.v4Base}${p.v4First + i}`;
      const v6 = `${p.v6Prefix}${(i + 2).toString(16)}`;
      const { ns, child } = await addPod(t, {
        name: spec.name,
        nodeNs: this.nodes[spec.node].ns,
        v4,
        v6,
        v4Gateway: p.v4Gateway,
        v6Gateway: `${p.v6Prefix}1`,
      });
      this.processes.push(child);
      this.pods.push({ name: spec.name, node: spec.node, ns, v4, v6 });
    }
  }

  /**
   * Opens the node's datapath as an agent starting up does: installs it the
   * first time, adopts it after crashAgent(), upgrades it when `upgrade`
   * brings other settings or map sizes. Needs `pinDirPrefix`.
   */
  startAgent(
    name: NodeName,
    upgrade: { settings?: Partial<DatapathSettings>; sizes?: MapSizes } = {},
  ): OpenedDatapath {
    const node = this.nodes[name];
    if (node.pinDir === undefined) throw new Error('startAgent needs the pinDirPrefix option');
    if (node.opened !== undefined) throw new Error(`node-${name} already has an agent`);
    if (upgrade.settings) node.settings = { ...node.settings, ...upgrade.settings };
    const opened = openAgent(
      node.pinDir,
      node.settings,
      node.uplinkIfindex,
      node.ns,
      upgrade.sizes,
    );
    node.opened = opened;
    node.datapath = opened.datapath;
    return opened;
  }

  /**
   * An agent that dies: every descriptor it held is closed, nothing is
   * detached or unpinned, so the datapath runs on by itself.
   */
  crashAgent(name: NodeName): void {
    const node = this.nodes[name];
    node.opened?.close();
    node.opened = undefined;
  }

  pod(name: string): TestbedPod {
    const p = this.pods.find((x) => x.name === name);
    if (!p) throw new Error(`no pod named ${name}`);
    return p;
  }

  /** One HTTP GET from the client; the pod's answer and the address that answered. */
  async http(url: string): Promise<{ status: number; remote: string; body: PodAnswer }> {
    return JSON.parse(await this.probe(['http', url])) as {
      status: number;
      remote: string;
      body: PodAnswer;
    };
  }

  /** One UDP datagram from the client; the answer and where it came from. */
  async udp(
    host: string,
    port: number,
    text = 'ping',
  ): Promise<{ from: string; fromPort: number; body: PodAnswer }> {
    return JSON.parse(await this.probe(['udp', host, String(port), text])) as {
      from: string;
      fromPort: number;
      body: PodAnswer;
    };
  }

  private async probe(args: string[]): Promise<string> {
    const { code, stdout, stderr } = await childOutput(spawnProbe(this.client, args, 'ignore'));
    if (code !== 0) throw new Error(`probe ${args.join(' ')}: ${stdout}${stderr}`.trim());
    return stdout.trim();
  }

  /** A long-lived TCP connection from the client. */
  async session(host: string, port: number): Promise<Session> {
    const child = spawnProbe(this.client, ['session', host, String(port)], 'pipe');
    this.processes.push(child);
    this.topo.onDestroy('client session', () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    const s = new Session(child);
    await s.connected();
    return s;
  }

  destroy(): void {
    this.topo.destroy();
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** The client end of a long-lived TCP connection: send a line, get the pod's answer. */
export class Session {
  private readonly lines: string[] = [];
  private waiter: ((line: string) => void) | undefined;

  constructor(private readonly child: ChildProcess) {
    // Writing to a probe that already exited (its connection broke) must not
    // throw EPIPE at the caller's process; the broken session shows in send().
    child.stdin?.on('error', () => undefined);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(line);
      } else this.lines.push(line);
    });
  }

  private next(timeoutMs = 5000): Promise<string> {
    const ready = this.lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no answer on the TCP session within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
    });
  }

  /** The client's source port, once connected. */
  localPort = 0;

  async connected(): Promise<void> {
    const first = JSON.parse(await this.next()) as {
      connected?: boolean;
      localPort?: number;
      error?: string;
    };
    if (!first.connected) throw new Error(`TCP session failed: ${first.error ?? 'unknown'}`);
    this.localPort = first.localPort ?? 0;
  }

  async send(text: string, timeoutMs = 5000): Promise<PodAnswer> {
    this.child.stdin!.write(`${text}\n`);
    const line = await this.next(timeoutMs);
    const answer = JSON.parse(line) as PodAnswer & { error?: string; closed?: boolean };
    if (answer.error || answer.closed) throw new Error(`TCP session broke: ${line}`);
    return answer;
  }

  close(): void {
    this.child.stdin!.end();
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
  }
}
