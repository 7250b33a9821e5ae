// One node's control plane:
//
//   manifest directory -> StandaloneSource  \
//   Kubernetes API -> KubernetesSource ------> ClusterStore --(batched change)-->
//   Pipeline: node model (what changed) -> decisions to the log and metrics
//                                       -> units to the datapath's reconcile loop
//
// With Kubernetes, the agents also elect one leader (a Lease), which runs the
// Service controller: addresses from the IPPools into Service status, with
// finalizers, conditions and events. Every agent, leader or not, programs its
// own node from that status, through the same pipeline.
//
// Level-triggered: every change hands the whole desired state on (derived
// again only where it changed), so a step that fails (and is logged and
// counted) is repaired by the next change or the loop's retry, never by
// replaying what was missed. Stopping leaves the datapath attached and
// pinned: the next agent adopts it without a gap in traffic; BGP peers that
// negotiated graceful restart keep our routes meanwhile (--bgp-stop), and an
// agent that took over a running datapath tells them it restarted.
import { ClusterStore } from '../store/cluster-store.js';
import { StandaloneSource } from '../standalone/source.js';
import { storeSecretLookup } from '../store/secret-lookup.js';
import type { ModelUpdate, NodeModel } from '../model/index.js';
import { logger, type Logger } from '../observe/log.js';
import { startObserveServer, type ObserveServer, type Readiness } from '../observe/server.js';

import type { AgentSettings } from './config.js';
import { resolveDatapathSettings } from './datapath-settings.js';
import { AgentMetrics, type AgentStep } from './metrics.js';
import { diffModelUpdate, logModelChanges } from './model-changes.js';
import { Pipeline, type PipelineStep } from './pipeline.js';
import type {
  AgentDatapath,
  AgentDatapathSettings,
  DatapathPort,
  ReconcileAttempt,
  UplinkReader,
} from './ports.js';
import { agentStatus } from '../status/index.js';

import { AgentBgp } from './bgp.js';
import { KubernetesSide, type LeaderTiming } from './kubernetes.js';
import { readUplink } from './uplink.js';

export interface AgentDependencies {
  datapath: DatapathPort;
  /** Default: `ip -j addr` in the uplink's namespace. */
  readUplink?: UplinkReader;
  /** The process's logger per component by default (tests capture lines). */
  logger?: (component: string) => Logger;
  /** Quiet time after a file event before the directory is read again; default 50 ms. */
  debounceMs?: number;
  /** Kubernetes mode: Lease timings other than client-go's (tests). */
  leaderTiming?: Partial<LeaderTiming>;
}

type Phase = 'idle' | 'scanning' | 'opening' | 'reconciling' | 'ready' | 'stopping' | 'stopped';

export class AgentStartError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AgentStartError';
  }
}

const OPENED: Record<AgentDatapath['origin'], string> = {
  installed: 'installed the datapath: loaded, pinned and attached to the uplink',
  adopted: 'adopted the running datapath as it is: traffic kept flowing across the restart',
  upgraded: 'upgraded the running datapath (see details)',
};

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

const FAILED: Record<PipelineStep, string> = {
  derive: 'deriving the node model failed; the datapath keeps its state',
  observe: "agent step 'observe' failed",
  submit: "agent step 'submit' failed",
};

export class Agent {
  private readonly log: Logger;
  private readonly modelLog: Logger;
  private readonly observeLog: Logger;
  private readonly sourceLog: Logger;
  private readonly metrics = new AgentMetrics();
  private phase: Phase = 'idle';
  private server: ObserveServer | undefined;
  private store: ClusterStore | undefined;
  private source: StandaloneSource | undefined;
  private k8s: KubernetesSide | undefined;
  private bgp: AgentBgp | undefined;
  private readonly makeLogger: (component: string) => Logger;
  private datapath: AgentDatapath | undefined;
  private datapathSettings: AgentDatapathSettings | undefined;
  private readonly cleanups: (() => void)[] = [];
  private pipeline: Pipeline | undefined;
  private lastReconcileError: string | undefined;
  private reconcileFailing = false;
  /** The last node address change warned about, so it is said once. */
  private warnedAddresses = '';
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly settings: AgentSettings,
    private readonly deps: AgentDependencies,
  ) {
    const make = deps.logger ?? logger;
    this.makeLogger = make;
    this.log = make('agent');
    this.modelLog = make('model');
    this.observeLog = make('observe');
    this.sourceLog = make('standalone');
  }

  /** Where /metrics, /healthz and /readyz answer; set once start() has opened them. */
  get observeUrl(): string | undefined {
    return this.server?.url;
  }

  /** The model last derived (for tests and `xlb status`). */
  get currentModel(): NodeModel | undefined {
    return this.pipeline?.model;
  }

  readiness(): Readiness {
    switch (this.phase) {
      case 'ready':
        return { ready: true };
      case 'idle':
      case 'scanning':
        return {
          ready: false,
          reason:
            this.settings.manifests === ''
              ? `listing Services, EndpointSlices, Nodes and IPPools from the Kubernetes API${this.k8s ? ` at ${this.k8s.server}` : ''} for the first time`
              : 'reading the manifest directory for the first time',
        };
      case 'opening':
        return { ready: false, reason: 'opening the datapath' };
      case 'reconciling':
        return {
          ready: false,
          reason:
            this.lastReconcileError === undefined
              ? 'waiting for the first reconcile of the datapath'
              : `the first reconcile failed and is retried: ${this.lastReconcileError}`,
        };
      case 'stopping':
      case 'stopped':
        return { ready: false, reason: 'shutting down' };
    }
  }

  /**
   * Opens the endpoints, reads the manifests, opens (or adopts) the datapath
   * and hands it the first desired state. Resolves once that is under way
   * (readiness then follows the first reconcile); rejects with what stopped
   * it, after undoing what it had started.
   */
  start(): Promise<void> {
    if (this.starting) throw new AgentStartError('this agent was already started');
    this.starting = this.startSteps().catch(async (e: unknown) => {
      await this.teardown();
      throw e;
    });
    return this.starting;
  }

  private async startSteps(): Promise<void> {
    const s = this.settings;
    this.phase = 'scanning';
    this.server = await startObserveServer({
      host: s.metricsAddress.host,
      port: s.metricsAddress.port,
      readiness: () => this.readiness(),
      status: () =>
        agentStatus({
          node: s.nodeName,
          mode: s.manifests === '' ? 'kubernetes' : 'standalone',
          readiness: () => this.readiness(),
          leader: () => this.k8s?.leading,
          model: () => this.currentModel,
          bgpSessions: () => this.bgp?.sessions() ?? [],
        }),
      log: this.observeLog,
    });
    this.log.info(
      { url: this.server.url, port: this.server.address.port },
      'serving /metrics, /healthz, /readyz and /status',
    );

    const store = new ClusterStore();
    this.store = store;
    if (s.manifests === '') await this.syncKubernetes(store);
    else await this.scanManifests(store);
    if (this.isStopping()) return;

    this.phase = 'opening';
    const uplink = (this.deps.readUplink ?? readUplink)(s.netns, s.uplink);
    const resolved = resolveDatapathSettings(s, store.node(s.nodeName), uplink);
    this.datapathSettings = resolved.settings;
    this.datapath = await this.deps.datapath.open({
      pinDir: s.pinDir,
      netns: s.netns,
      uplink: s.uplink,
      settings: resolved.settings,
    });
    this.log.info(
      {
        origin: this.datapath.origin,
        node: s.nodeName,
        uplink: s.uplink,
        netns: s.netns,
        pinDir: s.pinDir,
        settings: {
          ...resolved.settings,
          hashSeed: `0x${resolved.settings.hashSeed.toString(16)}`,
        },
        from: resolved.origins,
        ...this.datapath.details,
      },
      OPENED[this.datapath.origin],
    );
    if (this.isStopping()) return;

    this.bgp = new AgentBgp({
      nodeName: s.nodeName,
      netns: s.netns,
      addresses: resolved.settings,
      log: this.makeLogger('bgp'),
      // A datapath found running means an agent ran before us: a graceful
      // restart, with forwarding preserved (adopted: as it ran; upgraded: the
      // old one forwards until the new one holds the model).
      ...(this.datapath.origin === 'installed' ? {} : { restart: { forwardingPreserved: true } }),
      stopMode: s.bgpStop ?? 'graceful',
      // MD5 passwords come from Secrets in the agent's own namespace only.
      secrets: storeSecretLookup(store, s.leaseNamespace),
    });

    this.phase = 'reconciling';
    this.cleanups.push(
      this.datapath.reconciler.onAttempt((attempt) =>
        this.guard('observe', () => this.onAttempt(attempt)),
      ),
      // Routes follow the datapath: announced once it has been given the model.
      this.datapath.reconciler.onAttempt((attempt) => this.bgp?.flush(attempt.ok)),
    );
    const pipeline = new Pipeline({
      store,
      nodeName: s.nodeName,
      model: { loadBalancerClass: s.loadBalancerClass, defaultClass: s.defaultClass },
      sink: this.datapath.reconciler,
      onModel: (update) => this.observe(store, update),
      onFailure: (step, e) => this.failed(step, e, FAILED[step]),
    });
    this.pipeline = pipeline;
    this.cleanups.push(() => pipeline.stop());
    pipeline.start();
    this.k8s?.campaign(this.datapath);
  }

  /** Standalone mode: the manifest directory, read once now and watched. */
  private async scanManifests(store: ClusterStore): Promise<void> {
    const source = new StandaloneSource({
      directory: this.settings.manifests,
      store,
      log: this.sourceLog,
      secretNamespace: this.settings.leaseNamespace,
      ...(this.deps.debounceMs !== undefined ? { debounceMs: this.deps.debounceMs } : {}),
    });
    this.source = source;
    this.cleanups.push(
      source.onProblems((problems) =>
        this.guard('source', () => this.metrics.setManifestProblems(problems)),
      ),
    );
    await source.start();
    this.metrics.setManifestProblems(source.errors());
  }

  /** Kubernetes mode: every kind listed once, then watched. */
  private async syncKubernetes(store: ClusterStore): Promise<void> {
    let k8s: KubernetesSide;
    try {
      k8s = new KubernetesSide({
        settings: this.settings,
        store,
        logger: this.makeLogger,
        ...(this.deps.leaderTiming ? { leaderTiming: this.deps.leaderTiming } : {}),
        onLeading: (leading) => this.guard('observe', () => this.metrics.setLeader(leading)),
      });
    } catch (e) {
      throw new AgentStartError(errorText(e), { cause: e });
    }
    this.k8s = k8s;
    this.log.info(
      { server: k8s.server },
      'reading Services, EndpointSlices, Nodes and IPPools from the Kubernetes API',
    );
    await k8s.sync();
  }

  /** Reads the manifest directory again now (SIGHUP). */
  async rescan(): Promise<void> {
    try {
      await this.source?.rescan();
    } catch (e) {
      this.failed('source', e, 'rescanning the manifest directory failed');
    }
  }

  /**
   * Stops watching, lets a reconcile in flight finish, releases descriptors
   * and closes the endpoints. The datapath stays attached and pinned.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const wasReady = this.phase === 'ready';
      this.phase = 'stopping';
      this.pipeline?.stop();
      this.metrics.setReady(false);
      this.log.info(
        { ready: wasReady },
        'stopping; the datapath stays attached and pinned, so traffic keeps flowing',
      );
      // A first list that waits for an unreachable API server ends here.
      await this.k8s?.stop().catch(() => undefined);
      await this.starting?.catch(() => undefined);
      await this.teardown();
      this.log.info('stopped');
    })();
    return this.stopping;
  }

  private isStopping(): boolean {
    return this.phase === 'stopping' || this.phase === 'stopped';
  }

  /** Undoes what start() did, newest first; each step runs even if one before failed. */
  private async teardown(): Promise<void> {
    const step = async (what: string, fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        this.log.error({ err: e }, `shutdown: ${what} failed`);
      }
    };
    await step('stopping the manifest watch', () => this.source?.stop());
    await step('stopping the Kubernetes watches and election', () => this.k8s?.stop());
    await step('closing the BGP sessions', () => this.bgp?.stop());
    for (const undo of this.cleanups.splice(0).reverse()) await step('unsubscribing', undo);
    await step('finishing the reconcile in flight', () => this.datapath?.reconciler.stop());
    await step('releasing the datapath descriptors', () => this.datapath?.close());
    this.datapath = undefined;
    await step('closing the endpoints', () => this.server?.close());
    this.server = undefined;
    this.phase = 'stopped';
  }

  /** What a new model says, to the log and the metrics (only what changed). */
  private observe(store: ClusterStore, update: ModelUpdate): void {
    logModelChanges(this.modelLog, diffModelUpdate(update));
    this.metrics.applyModelUpdate(update);
    this.bgp?.schedule(store, update.model);
    this.checkNodeAddresses(store);
  }

  private onAttempt(attempt: ReconcileAttempt): void {
    if (!attempt.ok) {
      this.metrics.failed('reconcile');
      this.lastReconcileError = errorText(attempt.error);
      this.reconcileFailing = true;
      this.log.error(
        { err: attempt.error, retryInMs: attempt.retryInMs, durationMs: attempt.durationMs },
        `datapath reconcile failed: ${this.lastReconcileError}`,
      );
      return;
    }
    const fields = { durationMs: attempt.durationMs, ...attempt.summary };
    if (this.phase === 'reconciling') {
      this.phase = 'ready';
      this.metrics.setReady(true);
      this.log.info(fields, 'ready: the datapath holds the desired state');
    } else if (this.reconcileFailing) {
      this.log.info(fields, 'datapath reconcile succeeded again');
    } else {
      this.log.debug(fields, 'datapath reconciled');
    }
    this.reconcileFailing = false;
    this.lastReconcileError = undefined;
  }

  /**
   * The node addresses are load-time constants of the datapath; a Node
   * object that now says otherwise takes effect at the next start. Said
   * once per new value.
   */
  private checkNodeAddresses(store: ClusterStore): void {
    const opened = this.datapathSettings;
    if (opened === undefined) return;
    const s = this.settings;
    const now = resolveDatapathSettings(s, store.node(s.nodeName), {
      mtu: opened.mtu,
      ipv4: [opened.nodeIPv4],
      ipv6: [opened.nodeIPv6],
    }).settings;
    const key = `${now.nodeIPv4} ${now.nodeIPv6}`;
    if (key === `${opened.nodeIPv4} ${opened.nodeIPv6}` || key === this.warnedAddresses) return;
    this.warnedAddresses = key;
    this.log.warn(
      {
        running: { nodeIPv4: opened.nodeIPv4, nodeIPv6: opened.nodeIPv6 },
        node: { nodeIPv4: now.nodeIPv4, nodeIPv6: now.nodeIPv6 },
      },
      `the Node object ${s.nodeName} now gives other addresses than the datapath runs with; restart the agent to use them`,
    );
  }

  /** Runs a step; an exception is logged and counted, and goes no further. */
  private guard(step: AgentStep, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.failed(step, e, `agent step '${step}' failed`);
    }
  }

  private failed(step: AgentStep, e: unknown, message: string): void {
    try {
      this.metrics.failed(step);
      this.log.error({ err: e, step }, `${message}: ${errorText(e)}`);
    } catch {
      // The logger or registry itself failed: nothing left to tell.
    }
  }
}
