// What the BGP benchmark runs against: the agent test topology (client ──
// router ── node ── pods), BIRD in the router namespace exporting what it
// learns to the router's kernel, and the real `xlb agent` on the node, either
// in Kubernetes mode against the API server double (the leader allocates
// addresses) or in standalone mode reading a manifest directory.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { parse, parseAllDocuments } from 'yaml';

import { projectRoot } from '../../control/paths.js';
import { ip } from '../../control/topology/ip.js';
import { ClusterBed, BED, POD_PORTS } from '../../control/topology/cluster.js';
import { pinCleanup, runCleanup, until } from '../../control/topology/agent-harness.js';
import { nodeYaml, serviceYaml, sliceYaml } from '../../control/topology/manifests.js';
import { AgentProcess } from '../../control/topology/agent-process.js';
import { ApiServer, type KubeObject } from '../../control/apiserver-double/index.js';
import { kubeconfigYaml } from '../../test/support/kubectl.js';
import { BirdProcess } from '../../control/topology/bird.js';
import {
  bgpManifests,
  birdProtocol,
  birdRouterConfig,
  type BfdTimers,
} from '../../control/topology/bgp-router.js';
import { RouteMonitor } from './route-monitor.js';

const PODS = ['web-1', 'web-2'];

const CRD_FILES = ['ippool.yaml', 'bgppeer.yaml', 'bgpadvertisement.yaml'];
const LEASE = 'xlb-leader';

export type Mode = 'kubernetes' | 'standalone';

/** The n-th VIP a standalone round writes into the Service's status: a fresh address each round. */
export function vipFor(round: number): string {
  if (round < 0 || round > 99) throw new Error(`round ${round} is outside 0..99`);
  return `192.0.2.${140 + round}`;
}

export interface BgpBenchOptions {
  /** BFD between the router and the node (standalone mode). */
  bfd?: BfdTimers;
}

interface Ingress {
  ip?: string;
}

export class BgpBench {
  bed: ClusterBed | undefined;
  bird: BirdProcess | undefined;
  agent: AgentProcess | undefined;
  monitor: RouteMonitor | undefined;
  server: ApiServer | undefined;
  dir = '';
  pinDir = '';

  private constructor(
    readonly mode: Mode,
    readonly options: BgpBenchOptions,
  ) {}

  /** Builds everything; on failure removes what it built and throws. */
  static async create(mode: Mode, options: BgpBenchOptions = {}): Promise<BgpBench> {
    const b = new BgpBench(mode, options);
    try {
      await b.build();
      return b;
    } catch (e) {
      await b.destroy().catch(() => undefined);
      throw e;
    }
  }

  private async build(): Promise<void> {
    this.bed = await ClusterBed.create(PODS);
    // The VIPs reach the node only through what the agent announces.
    ip('-n', this.bed.router, 'route', 'del', BED.vipRangeV4);
    const { bfd } = this.options;
    this.bird = await BirdProcess.start(
      this.bed.router,
      birdRouterConfig(1, bfd === undefined ? {} : { bfd }),
    );
    this.monitor = await RouteMonitor.start(this.bed.router);
    this.pinDir = `/sys/fs/bpf/xlb-bench-${this.bed.topo.tag}`;
    this.dir = mkdtempSync(join(tmpdir(), 'xlb-bench-bgp-'));
    const common = [
      '--node-name',
      'node-a',
      '--uplink',
      'eth0',
      '--netns',
      this.bed.node,
      '--pin-dir',
      this.pinDir,
      '--metrics-address',
      '127.0.0.1:0',
      // info: AgentProcess waits for the 'serving /metrics' line.
      '--log-level',
      'info',
    ];
    if (this.mode === 'kubernetes') {
      const server = (this.server = await ApiServer.start());
      for (const file of CRD_FILES)
        server.apply(
          parse(
            readFileSync(join(projectRoot(), 'charts', 'xlb', 'crds', file), 'utf8'),
          ) as KubeObject,
        );
      for (const doc of parseAllDocuments(bgpManifests())) {
        const obj = doc.toJS() as KubeObject;
        // The leader allocates from the pool here, so it must hand addresses out on its own.
        if (obj.kind === 'IPPool') (obj.spec as Record<string, unknown>).autoAssign = true;
        server.apply(obj);
      }
      server.apply(parse(nodeYaml('node-a', [BED.node.v4, BED.node.v6])) as KubeObject);
      writeFileSync(join(this.dir, 'kubeconfig'), kubeconfigYaml(server.url), { mode: 0o600 });
      this.agent = await AgentProcess.start([
        ...common,
        '--kubeconfig',
        join(this.dir, 'kubeconfig'),
        '--lease-namespace',
        'default',
        '--lease-name',
        LEASE,
        '--identity',
        'xlb-node-a',
        '--default-class',
      ]);
      await this.agent.waitReady();
      await this.agent.line('leadership', (l) => l.component === 'k8s' && /^leading/.test(l.msg));
    } else {
      writeFileSync(join(this.dir, 'nodes.yaml'), nodeYaml('node-a', [BED.node.v4, BED.node.v6]));
      writeFileSync(
        join(this.dir, 'bgp.yaml'),
        bgpManifests(
          0,
          {},
          bfd === undefined
            ? {}
            : {
                bfd: {
                  enabled: true,
                  minRxMs: bfd.intervalMs,
                  minTxMs: bfd.intervalMs,
                  detectMultiplier: bfd.multiplier,
                },
              },
        ),
      );
      this.agent = await AgentProcess.start([...common, '--manifests', this.dir]);
      await this.agent.waitReady();
    }
    await until(
      'BIRD to establish the session with the agent',
      () => this.bird!.bgpState(birdProtocol(0)) === 'Established',
      30_000,
      50,
    );
  }

  /**
   * Kubernetes: creates the LoadBalancer Service `name` with no address (the
   * leader allocates one). Standalone: writes it with `vip` in its status.
   */
  createService(name: string, vip: string): void {
    const manifest = serviceYaml({
      name,
      vips: [vip],
      ports: [{ name: 'http', port: 80, targetPort: POD_PORTS.http }],
    });
    if (this.server) {
      const obj = parse(manifest) as KubeObject;
      delete obj.status;
      this.server.apply(obj);
    } else writeFileSync(join(this.dir, 'service.yaml'), manifest);
  }

  /** Kubernetes: the address the leader wrote into the Service's status, once it has. */
  allocated(name: string): Promise<string> {
    return until(`Service ${name} to get an address in its status`, () => {
      const status = this.server!.get('Service', name)?.status as
        { loadBalancer?: { ingress?: Ingress[] } } | undefined;
      return status?.loadBalancer?.ingress?.[0]?.ip;
    });
  }

  /** The Service's EndpointSlice with both pods, or emptied. */
  setSlice(service: string, withEndpoints: boolean): void {
    const bed = this.bed!;
    const manifest = sliceYaml({
      name: `${service}-v4`,
      service,
      family: 4,
      ports: [{ name: 'http', port: POD_PORTS.http }],
      endpoints: withEndpoints
        ? PODS.map((name) => ({ ip: bed.pod(name).v4, node: 'node-a', pod: name }))
        : [],
    });
    if (this.server) this.server.apply(parse(manifest) as KubeObject);
    else writeFileSync(join(this.dir, `slice-${service}.yaml`), manifest);
  }

  /** Starts a new agent with the same arguments once the old one has exited. */
  async restartAgent(): Promise<void> {
    const old = this.agent!;
    await old.stop('SIGKILL');
    this.agent = await AgentProcess.start(old.args);
  }

  /** Stops and removes everything, each step also when one before failed. */
  destroy(): Promise<void> {
    const dir = this.dir;
    return runCleanup([
      ['stopping the agent', () => this.agent?.stop('SIGTERM').finally(() => this.agent?.kill())],
      ['stopping ip monitor', () => this.monitor?.stop()],
      ['stopping BIRD', () => this.bird?.stop()],
      ...pinCleanup(this.pinDir),
      ['removing the namespaces', () => this.bed?.destroy()],
      ['stopping the API server', () => this.server?.close()],
      dir === '' ? undefined : ['removing the manifests', () => rmSync(dir, { recursive: true })],
    ]);
  }
}
