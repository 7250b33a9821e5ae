// The agent's Kubernetes side: the informer source that fills the store,
// and, once the datapath is open, the Lease election whose winner runs the
// Service controller (addresses, status, finalizers, events). Every agent
// programs its own node from the Services' status; only the leader writes.
import { KubeConfig } from '@kubernetes/client-node';

import { KubernetesSource } from '../k8s/source.js';
import { ALL_SOURCE_KINDS } from '../k8s/watched-kinds.js';
import { LeaderElector } from '../k8s/leader.js';
import { ServiceController } from '../k8s/service-controller.js';
import { registry } from '../observe/metrics.js';
import type { Logger } from '../observe/log.js';
import type { ClusterStore } from '../store/cluster-store.js';

import { DatapathClearance } from './clearance.js';
import type { AgentSettings } from './config.js';
import type { AgentDatapath } from './ports.js';

export class KubeConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KubeConfigError';
  }
}

/** The kubeconfig file given, else in-cluster in a pod, else $KUBECONFIG or ~/.kube/config. */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (file !== undefined) kc.loadFromFile(file);
    else kc.loadFromDefault();
  } catch (e) {
    const what = file ?? 'the default kubeconfig (in-cluster, $KUBECONFIG or ~/.kube/config)';
    throw new KubeConfigError(
      `cannot load ${what}: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
  if (kc.getCurrentCluster() === null) {
    throw new KubeConfigError(
      file !== undefined
        ? `${file} names no current cluster: set current-context, or give --manifests for standalone mode`
        : 'no Kubernetes API found (not in a pod, no $KUBECONFIG, no ~/.kube/config): give --kubeconfig, or --manifests for standalone mode',
    );
  }
  return kc;
}

/** Lease timings; the defaults are client-go's. Tests shorten them. */
export interface LeaderTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface KubernetesSideOptions {
  settings: AgentSettings;
  store: ClusterStore;
  logger: (component: string) => Logger;
  leaderTiming?: Partial<LeaderTiming>;
  /** Leadership changed (metrics, readiness detail). */
  onLeading?: (leading: boolean) => void;
}

export class KubernetesSide {
  readonly kubeConfig: KubeConfig;
  readonly source: KubernetesSource;
  private controller: ServiceController | undefined;
  private elector: LeaderElector | undefined;
  private clearance: DatapathClearance | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopping: Promise<void> | undefined;
  private readonly log: Logger;

  constructor(private readonly options: KubernetesSideOptions) {
    this.kubeConfig = loadKubeConfig(options.settings.kubeconfig);
    this.log = options.logger('k8s');
    this.source = new KubernetesSource({
      kubeConfig: this.kubeConfig,
      store: options.store,
      // BGPPeer and BGPAdvertisement too; their CRDs missing holds nothing back.
      kinds: ALL_SOURCE_KINDS,
      // BGP MD5 passwords: the Secrets of the agent's own namespace only (the
      // chart's Role there grants no more); readiness does not wait for them.
      secretNamespace: options.settings.leaseNamespace,
      log: options.logger('k8s-source'),
      registry,
      // Relists back off to 10 s at most (client-go: 30 s), so an agent
      // catches up within seconds of an API server outage; with jitter, the
      // agents of a large cluster still do not come back in step.
      backoff: { maxMs: 10_000 },
    });
  }

  /** Whether this agent holds the Lease now. */
  get leading(): boolean {
    return this.elector?.isLeader() ?? false;
  }

  /** Where the API server is, for logs. */
  get server(): string {
    return this.kubeConfig.getCurrentCluster()?.server ?? '(unknown)';
  }

  /** Starts the informers; resolves once every kind has been listed. */
  async sync(): Promise<void> {
    this.source.start();
    await this.source.whenSynced();
  }

  /**
   * Joins the election; the winner runs the Service controller, whose
   * cleanups wait for this node's datapath to let go of the addresses.
   */
  campaign(datapath: Pick<AgentDatapath, 'servedVips' | 'reconciler'>): void {
    const s = this.options.settings;
    const clearance = new DatapathClearance({
      servedVips: (a) => datapath.servedVips(a),
      onAttempt: (l) => datapath.reconciler.onAttempt(l),
    });
    this.clearance = clearance;
    const controller = new ServiceController({
      store: this.options.store,
      namespaceLabels: () => this.source.namespaceLabels(),
      options: { loadBalancerClass: s.loadBalancerClass, defaultClass: s.defaultClass },
      kubeConfig: this.kubeConfig,
      log: this.options.logger('service-controller'),
      registry,
      cleanup: clearance,
      identity: s.identity,
    });
    this.controller = controller;
    this.unsubscribe = this.source.onNamespaceLabels(() => controller.refresh());
    this.elector = new LeaderElector({
      kubeConfig: this.kubeConfig,
      namespace: s.leaseNamespace,
      name: s.leaseName,
      identity: s.identity,
      ...this.options.leaderTiming,
      log: this.options.logger('leader'),
      onStartedLeading: () => {
        this.log.info(
          { lease: `${s.leaseNamespace}/${s.leaseName}` },
          'leading: this agent allocates addresses and writes Service status',
        );
        this.options.onLeading?.(true);
        controller.start();
      },
      onStoppedLeading: async () => {
        this.options.onLeading?.(false);
        await controller.stop();
      },
      onNewLeader: (identity) => {
        if (identity !== s.identity)
          this.log.info({ leader: identity }, `${identity} leads; this agent follows`);
      },
    });
    this.elector.start();
  }

  /**
   * Stops writing, gives the Lease up (another agent takes over at once),
   * stops watching; a sync still waiting rejects. Once, however often called.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.unsubscribe?.();
      await this.controller?.stop();
      await this.elector?.stop({ release: true });
      this.clearance?.close();
      await this.source.stop();
    })();
    return this.stopping;
  }
}
