// The demo's story, step by step, on the same topology and with the same
// runners as the end-to-end tests (control/topology): build, start BIRD and
// the agents, show addresses and routes, send requests, remove a pod, remove
// a node, sum up. Each step prints what it measured and records checks; the
// caller (run.ts) owns signals and the exit code, and calls cleanup().
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { renderTable } from '../cli/table.js';
import { BPFFS } from '../system/bpffs.js';
import { pinCleanup, runCleanup, type CleanupStep } from '../topology/agent-harness.js';
import { AgentProcess, nodeAgentArgs } from '../topology/agent-process.js';
import { birdRouterConfig } from '../topology/bgp-router.js';
import { BirdProcess } from '../topology/bird.js';
import { BED, ClusterBed } from '../topology/cluster.js';
import { run } from '../topology/ip.js';
import {
  BFD,
  NODE_COUNT,
  nodeName,
  podPlan,
  SERVICES,
  type DemoService,
  type PlacedPod,
} from './cluster.js';
import type { Connections } from './connections.js';
import { DOOMED, removeNode, removePod } from './disruptions.js';
import { clearLeftovers, DEMO_PREFIX, forget, record } from './leftovers.js';
import {
  agentBackends,
  agentServesVip,
  agentStatus,
  birdAnnouncers,
  birdSessionState,
  routerNextHops,
  routerRouteText,
  tally,
  type RequestTally,
} from './observe.js';
import { settle, SETTLE_MS } from './poll.js';
import { demoPreflight } from './preflight.js';
import type { Progress } from './progress.js';
import {
  allNodes,
  hopsText,
  nodeList,
  requestTable,
  summaryTable,
  topologyDiagram,
} from './render.js';
import { KubernetesSource, ManifestSource, type ClusterSource } from './source.js';

export interface DemoOptions {
  /** Kubernetes mode: the API server double and kubectl instead of a manifest directory. */
  kube: boolean;
  /** Pods of the Cluster Service `web`, spread over the nodes. */
  webPods: number;
  /** Requests per Service in each round of traffic. */
  requests: number;
  /** Long-lived connections opened before a pod and a node go. */
  connections: number;
}

/** Enough to lose a pod and then a node and still have two; each node's pod /27 has room for 20. */
export const MIN_WEB_PODS = 4;
export const MAX_WEB_PODS = 30;
export const DEFAULTS: DemoOptions = { kube: false, webPods: 6, requests: 60, connections: 12 };

export class Demo {
  bed: ClusterBed | undefined;
  bird: BirdProcess | undefined;
  source: ClusterSource | undefined;
  readonly agents: Array<AgentProcess | undefined> = [];
  tempDir = '';
  private pods: PlacedPod[] = [];
  live: PlacedPod[] = [];
  readonly vips = new Map<string, string>();
  /** Every set of long-lived connections opened, for cleanup. */
  readonly connections: Connections[] = [];

  constructor(
    readonly options: DemoOptions,
    readonly progress: Progress,
    readonly signal: AbortSignal,
  ) {}

  get pinPrefix(): string {
    return this.bed ? `${BPFFS}/${DEMO_PREFIX}-${this.bed.topo.tag}` : '';
  }

  pinDir(i: number): string {
    return `${this.pinPrefix}-${nodeName(i)}`;
  }

  logFile(i: number): string {
    return join(this.tempDir, `agent-${nodeName(i)}.log`);
  }

  nodeOfPod = (pod: string): string => {
    const p = this.pods.find((x) => x.name === pod);
    return p ? nodeName(p.node) : '?';
  };

  /** Runs steps 1-7; the summary and cleanup are the caller's. */
  async story(): Promise<void> {
    // A step that cannot be cut short (building namespaces) finishes; the
    // next one does not start after Ctrl-C.
    const step = <T>(
      title: string,
      fn: () => Promise<{ value: T; lines: string[] }>,
    ): Promise<T> => {
      this.signal.throwIfAborted();
      return this.progress.run(title, fn);
    };
    await step('preflight: root, kernel features, tools, leftovers', () => this.preflight());
    await step('building the topology: client, router, 3 nodes, pods', () => this.build());
    await step(
      `starting BIRD and ${NODE_COUNT} agents (${this.options.kube ? 'Kubernetes mode, API server double' : 'standalone mode, manifest directory'})`,
      () => this.start(),
    );
    await step('addresses and routes', () => this.routes());
    await step(`requests: ${this.options.requests} to each Service`, () => this.requests());
    await step('removing a pod', () => removePod(this));
    await step(`removing a node: ${nodeName(DOOMED)} dies`, () => removeNode(this));
  }

  private preflight(): Promise<{ value: void; lines: string[] }> {
    demoPreflight({ kube: this.options.kube });
    const removed = clearLeftovers();
    this.tempDir = mkdtempSync(join(tmpdir(), 'xlb-demo-'));
    record({ pid: process.pid, tempDir: this.tempDir });
    return Promise.resolve({
      value: undefined,
      lines: [
        'root, /sys/fs/bpf, ip, ethtool, bird, birdc; BPF programs load and attach to a veth (native XDP)',
        removed.length > 0
          ? `an earlier demo left things behind; removed: ${removed.join(', ')}`
          : 'nothing left over from an earlier demo',
        `temp dir: ${this.tempDir} (the agents' logs go there)`,
      ],
    });
  }

  private async build(): Promise<{ value: void; lines: string[] }> {
    const plan = podPlan(this.options.webPods);
    this.bed = await ClusterBed.create(plan, {
      nodes: NODE_COUNT,
      prefix: DEMO_PREFIX,
      staticVipRoute: false,
    });
    record({ pid: process.pid, tempDir: this.tempDir, tag: this.bed.topo.tag });
    // Hash on ports too, so one client's connections spread over the paths.
    run('ip', [
      'netns',
      'exec',
      this.bed.router,
      'sysctl',
      '-qw',
      'net.ipv4.fib_multipath_hash_policy=1',
    ]);
    this.pods = plan.map((s) => ({ ...s, v4: this.bed!.pod(s.name).v4 }));
    this.live = [...this.pods];
    return {
      value: undefined,
      lines: topologyDiagram(plan, `${DEMO_PREFIX}-${this.bed.topo.tag}-`),
    };
  }

  private async start(): Promise<{ value: void; lines: string[] }> {
    const bed = this.bed!;
    this.source = this.options.kube
      ? await KubernetesSource.start(this.tempDir)
      : new ManifestSource(this.tempDir);
    await this.source.publish(this.pods);
    this.signal.throwIfAborted();
    this.bird = await BirdProcess.start(bed.router, birdRouterConfig(NODE_COUNT, { bfd: BFD }));
    this.signal.throwIfAborted();
    const agentsStart = performance.now();
    const started = await Promise.allSettled(
      Array.from({ length: NODE_COUNT }, async (_, i) => {
        const agent = await AgentProcess.start(
          [
            ...nodeAgentArgs({
              nodeName: nodeName(i),
              netns: bed.nodes[i]!,
              pinDir: this.pinDir(i),
              logLevel: 'info',
            }),
            ...this.source!.agentArgs(i),
          ],
          { logFile: this.logFile(i) },
        );
        this.agents[i] = agent;
        return agent;
      }),
    );
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason as Error;
    this.signal.throwIfAborted();
    for (const a of this.agents) await a!.waitReady();

    const sessions = await settle(
      async () =>
        Promise.all(
          this.agents.map(async (a, i) => ({
            bird: birdSessionState(this.bird!, i),
            agent: (await agentStatus(a!.url)).bgpSessions[0]?.state ?? 'none',
          })),
        ),
      (s) => s.every((x) => x.bird === 'Established' && x.agent === 'Established'),
      { timeoutMs: SETTLE_MS, intervalMs: 100, signal: this.signal, start: agentsStart },
    );
    const states = sessions.value ?? [];
    const established = states.filter(
      (x) => x.bird === 'Established' && x.agent === 'Established',
    ).length;
    this.progress.check(
      'BGP sessions Established',
      sessions.ok,
      `${established} of ${NODE_COUNT} (BIRD and agents agree), ${(sessions.ms / 1000).toFixed(1)} s after the agents started`,
    );
    return {
      value: undefined,
      lines: renderTable(
        ['node', 'agent', 'BGP (BIRD)', 'BGP (agent)', 'log'],
        this.agents.map((a, i) => [
          nodeName(i),
          a!.url,
          states[i]?.bird ?? '?',
          states[i]?.agent ?? '?',
          this.logFile(i),
        ]),
      ),
    };
  }

  /** The nodes that should announce a Service: all (Cluster), or those with one of its pods (Local). */
  private expectedAnnouncers(s: DemoService): string[] {
    const alive = allNodes().filter((_, i) => this.agents[i]?.running);
    if (s.policy === 'Cluster') return alive;
    const withPod = new Set(
      this.live.filter((p) => p.service === s.name).map((p) => nodeName(p.node)),
    );
    return alive.filter((n) => withPod.has(n));
  }

  private async routes(): Promise<{ value: void; lines: string[] }> {
    const addresses = await settle(
      () => this.source!.serviceAddresses(),
      (m) => SERVICES.every((s) => m.get(s.name) !== undefined),
      { timeoutMs: SETTLE_MS, signal: this.signal },
    );
    for (const s of SERVICES) {
      const vip = addresses.value?.get(s.name);
      this.progress.check(
        `${s.name}: address assigned`,
        vip !== undefined,
        vip === undefined
          ? 'no address in its status'
          : `${vip} (${this.options.kube ? 'allocated by the leader, in Service status' : 'from the manifest'})`,
      );
      if (vip !== undefined) this.vips.set(s.name, vip);
    }
    const missing = SERVICES.filter((s) => !this.vips.has(s.name)).map((s) => s.name);
    if (missing.length > 0)
      throw new Error(
        `no address for ${missing.join(', ')} after ${SETTLE_MS / 1000} s: ` +
          (this.options.kube
            ? "the leader did not write Service status; see the agents' logs"
            : 'the manifests give none'),
      );
    const serving = await settle(
      () => Promise.all(this.agents.map((a) => agentStatus(a!.url))),
      (st) => st.every((x) => [...this.vips.values()].every((v) => agentServesVip(x, v))),
      { timeoutMs: SETTLE_MS, signal: this.signal },
    );
    const statuses = serving.value ?? [];
    const servingCount = statuses.filter((x) =>
      [...this.vips.values()].every((v) => agentServesVip(x, v)),
    ).length;
    this.progress.check(
      'every agent serves the addresses',
      serving.ok,
      `${servingCount} of ${NODE_COUNT} agents' datapaths have frontends on ${nodeList([...this.vips.values()])}`,
    );
    const leader = statuses.find((x) => x.leader === true)?.node;
    const rows: string[][] = [];
    const raw: string[] = [];
    for (const s of SERVICES) {
      const vip = this.vips.get(s.name);
      if (vip === undefined) continue;
      const want = this.expectedAnnouncers(s);
      const hops = await settle(
        () => routerNextHops(this.bed!.router, vip),
        (h) => h.map((x) => x.node).join() === want.join(),
        { timeoutMs: SETTLE_MS, intervalMs: 100, signal: this.signal },
      );
      const announcers = birdAnnouncers(this.bird!, vip);
      const got = (hops.value ?? []).map((h) => h.node);
      this.progress.check(
        `${s.name} (${s.policy}): router routes via ${want.length} nodes`,
        hops.ok && announcers.join() === want.join(),
        `next hops ${nodeList(got)}; announced by ${nodeList(announcers)}`,
      );
      rows.push([s.name, s.policy, vip, nodeList(announcers), hopsText(hops.value ?? [])]);

      raw.push(...routerRouteText(this.bed!.router, vip).map((l) => `  ${l}`));
    }
    return {
      value: undefined,
      lines: [
        ...renderTable(['service', 'policy', 'address', 'announced by', 'router next hops'], rows),
        '',
        this.options.kube
          ? `addresses: allocated from the IPPool by the leader (${leader ?? 'none seen'}'s agent), in each Service's status`
          : "addresses: from each Service's status in the manifests (standalone mode has no allocator)",
        '',
        `the router's kernel (ip route, in ${this.bed!.router}):`,
        ...raw,
        '',
        "Cluster: every node announces and forwards to any pod (IPIP to the pod's node).",
        'Local: only nodes with a pod of the Service announce; traffic stays on the node.',
      ],
    };
  }

  async burst(service: string): Promise<RequestTally> {
    const vip = this.vips.get(service)!;
    return tally(await this.bed!.httpMany(`http://${vip}/`, this.options.requests));
  }

  /** Checks of one round of requests: all answered, by exactly the pods expected, each seeing the client. */
  checkRound(label: string, service: string, t: RequestTally): void {
    const expected = this.live
      .filter((p) => p.service === service)
      .map((p) => p.name)
      .sort();
    const answered = t.pods.map((p) => p.pod).sort();
    this.progress.check(
      `${label}: ${service} answered`,
      t.answered === t.sent,
      `${t.answered} of ${t.sent}${t.errors.length > 0 ? ` (first error: ${t.errors[0]})` : ''}`,
    );
    this.progress.check(
      `${label}: ${service} spread over its pods`,
      answered.join() === expected.join(),
      `answered by ${nodeList(answered)}${answered.join() === expected.join() ? '' : `; expected ${nodeList(expected)}`}`,
    );
  }

  private async requests(): Promise<{ value: void; lines: string[] }> {
    const lines: string[] = [];
    const clients = new Set<string>();
    for (const s of SERVICES) {
      if (!this.vips.has(s.name)) continue;
      const t = await this.burst(s.name);
      this.checkRound('requests', s.name, t);
      for (const p of t.pods) for (const c of p.clients) clients.add(c);
      lines.push(...requestTable(`${s.name} (${s.policy})`, t, this.nodeOfPod), '');
    }
    const preserved = clients.size === 1 && clients.has(BED.client.v4);
    this.progress.check(
      'client address preserved',
      preserved,
      `pods saw ${nodeList([...clients])}; the client is ${BED.client.v4}`,
    );
    lines.push(
      preserved
        ? `client address preserved: yes (${BED.client.v4} seen by every pod)`
        : `client address preserved: NO (the pods saw ${nodeList([...clients])}, the client is ${BED.client.v4})`,
    );
    return { value: undefined, lines };
  }

  /** Waits until every running agent's model has exactly `want` as web's backends. */
  async backendsConverge(label: string, want: readonly string[]): Promise<number> {
    const sorted = [...want].sort();
    const r = await settle(
      () =>
        Promise.all(
          this.agents
            .filter((a) => a?.running)
            .map(async (a) => agentBackends(await agentStatus(a!.url), 'web')),
        ),
      (all) => all.every((b) => b.join() === sorted.join()),
      { timeoutMs: SETTLE_MS, intervalMs: 20, signal: this.signal },
    );
    this.progress.check(
      `${label}: agents updated`,
      r.ok,
      `every running agent's web backends updated after ${Math.round(r.ms)} ms`,
    );
    return r.ms;
  }

  summary(): string[] {
    return summaryTable(this.progress.checks);
  }

  /** How to look around while the demo holds. */
  holdHints(): string[] {
    const bed = this.bed!;
    const web = this.vips.get('web') ?? '';
    const running = this.agents.map((a, i) => ({ a, i })).filter(({ a }) => a?.running);
    return [
      'Everything keeps running. Look around from another terminal (as root):',
      `  ip netns exec ${bed.router} ip route`,
      `  birdc -s ${this.bird!.socket} show route all`,
      `  ip netns exec ${bed.client} curl -s http://${web}/`,
      ...running.map(
        ({ a, i }) =>
          `  xlb status --agent ${a!.url} --pin-dir ${this.pinDir(i)}     (${nodeName(i)})`,
      ),
      ...(running[0]
        ? [
            `  xlb explain ${BED.client.v4}:40000 ${web}:80/TCP --pin-dir ${this.pinDir(running[0].i)}`,
          ]
        : []),
      ...this.source!.hints().map((h) => `  ${h}`),
      `  agents' logs: ${join(this.tempDir, 'agent-*.log')}`,
      'Press Ctrl-C to clean up and exit.',
    ];
  }

  /**
   * Removes everything, each step also when one before failed; throws naming
   * what failed. With `keepLogs`, the agents' logs are first copied out of the
   * temp dir; returns where they went.
   */
  async cleanup(options: { keepLogs?: boolean } = {}): Promise<string | undefined> {
    let kept: string | undefined;
    const steps: CleanupStep[] = [
      ...this.agents.map(
        (a, i) => [`stopping ${nodeName(i)}'s agent`, () => a?.stop('SIGKILL', 5000)] as const,
      ),
      ['closing the connections', () => this.connections.forEach((c) => c.close())],
      ['stopping BIRD', () => this.bird?.stop()],
      ...(this.bed
        ? Array.from({ length: NODE_COUNT }, (_, i) => pinCleanup(this.pinDir(i))).flat()
        : []),
      ['removing the namespaces, pods and probes', () => this.bed?.destroy()],
      ['stopping the API server', () => this.source?.close()],
      options.keepLogs && this.tempDir !== ''
        ? ["keeping the agents' logs", () => (kept = this.keepLogs())]
        : undefined,
      this.tempDir === ''
        ? undefined
        : ['removing the temp dir', () => rmSync(this.tempDir, { recursive: true, force: true })],
      ['forgetting this demo', () => forget(process.pid)],
    ];
    await runCleanup(steps);
    return kept;
  }

  private keepLogs(): string | undefined {
    const logs = readdirSync(this.tempDir).filter((f) => f.endsWith('.log'));
    if (logs.length === 0) return undefined;
    const dir = mkdtempSync(join(tmpdir(), 'xlb-demo-logs-'));
    for (const f of logs) copyFileSync(join(this.tempDir, f), join(dir, f));
    return dir;
  }
}
