// The agent's BGP side: one BgpSpeaker for this node, fed after every model
// derivation (which every store change causes, BGPPeer and BGPAdvertisement
// included) with the peers, advertisements, pools and this node's
// announcements. Sessions start from the uplink's network namespace, where
// the routers are.
//
// Across an agent restart (graceful restart, RFC 4724): stop() in graceful
// mode leaves our routes with the peers that negotiated it, since the pinned
// datapath keeps forwarding; an agent that adopted a running datapath starts
// its speaker as a restart, and End-of-RIB follows the first successful
// reconcile, so the peers swap their stale routes for the model's without a
// gap and drop the ones no longer wanted.
import {
  BgpSpeaker,
  defaultPeerConnect,
  type PeerConnect,
  type SpeakerRestart,
  type StopMode,
} from '../bgp/speaker.js';
import type { SecretLookup, SpeakerNode } from '../bgp/config.js';
import type { NodeModel } from '../model/index.js';
import { registry } from '../observe/metrics.js';
import type { Logger } from '../observe/log.js';
import type { BgpSessionStatus } from '../status/index.js';
import type { ClusterStore } from '../store/cluster-store.js';
import { inNetns } from '../../native/index.js';

import { NO_IPV4, NO_IPV6 } from './datapath-settings.js';
import type { AgentDatapathSettings } from './ports.js';

export interface AgentBgpOptions {
  nodeName: string;
  /** Network namespace of the uplink; undefined: the agent's own. */
  netns: string | undefined;
  /** The node addresses the datapath runs with: router id and next hops. */
  addresses: Pick<AgentDatapathSettings, 'nodeIPv4' | 'nodeIPv6'>;
  log: Logger;
  /** Set when a previous agent's datapath was taken over: this is a restart. */
  restart?: SpeakerRestart;
  /** How stop() leaves the peers; default graceful. */
  stopMode?: StopMode;
  /** BGPPeers' MD5 passwords (the store's Secrets). */
  secrets?: SecretLookup;
}

export class AgentBgp {
  private readonly speaker: BgpSpeaker;
  private nodeKey = '';
  private lastProblems = '';
  private stopped = false;
  private ribComplete = false;
  private pending: { store: ClusterStore; model: NodeModel } | undefined;

  constructor(private readonly options: AgentBgpOptions) {
    const { netns } = options;
    const connect: PeerConnect =
      netns === undefined ? defaultPeerConnect : (t) => inNetns(netns, () => defaultPeerConnect(t));
    this.speaker = new BgpSpeaker({
      node: this.node(undefined),
      connect,
      // BFD's UDP sockets belong in the uplink's namespace too.
      ...(netns === undefined ? {} : { scope: <T>(fn: () => T): T => inNetns(netns, fn) }),
      registry,
      log: options.log,
      ...(options.restart === undefined ? {} : { restart: options.restart }),
      ...(options.secrets === undefined ? {} : { secrets: options.secrets }),
    });
  }

  /**
   * Notes what `model` decides for this node; flush() announces it. The
   * agent flushes after each reconcile attempt, so the datapath gets the
   * model first and a burst of derivations makes one update (whose cost
   * grows with the number of Services).
   */
  schedule(store: ClusterStore, model: NodeModel): void {
    this.pending = { store, model };
  }

  /**
   * Announces the model last scheduled, if any; failures are logged, and the
   * next change retries. `applied`: the datapath now holds that model; the
   * first time, after a restart, End-of-RIB tells the peers our routes are
   * complete.
   */
  flush(applied = true): void {
    const next = this.pending;
    this.pending = undefined;
    if (next !== undefined) {
      try {
        this.update(next.store, next.model);
      } catch (e) {
        this.options.log.error(
          { err: e },
          'updating the BGP speaker failed; the next change retries',
        );
        return;
      }
    }
    if (applied && !this.ribComplete && !this.stopped) {
      this.ribComplete = true;
      if (this.options.restart !== undefined)
        this.options.log.info(
          'the datapath holds the model: End-of-RIB to the peers, which drop the stale routes not announced again',
        );
      this.speaker.ribComplete();
    }
  }

  /** Announces what `model` decides for this node, to the peers the store selects. */
  update(store: ClusterStore, model: NodeModel): void {
    // A derivation can still finish while the agent shuts down.
    if (this.stopped) return;
    const node = this.node(store.node(this.options.nodeName)?.metadata?.labels);
    const key = JSON.stringify(node);
    const report = this.speaker.update({
      peers: store.bgpPeers(),
      advertisements: store.bgpAdvertisements(),
      pools: store.pools(),
      announcements: model.announcements,
      ...(key !== this.nodeKey ? { node } : {}),
    });
    this.nodeKey = key;
    // The speaker logs each problem; the agent says once when they all cleared.
    const problems = report.problems.join('\n');
    if (problems === '' && this.lastProblems !== '')
      this.options.log.info('BGP configuration problems resolved');
    this.lastProblems = problems;
  }

  /** The sessions as `xlb status` shows them. */
  sessions(): BgpSessionStatus[] {
    return [...this.speaker.sessions()].map(([peer, s]) => ({
      peer,
      peerAsn: s.options.peerAs,
      localAsn: s.options.localAs,
      state: s.state,
      prefixesAdvertised: s.routes().length,
      ...(s.lastError !== undefined ? { lastError: s.lastError } : {}),
    }));
  }

  /** Closes the sessions, leaving the peers as the stop mode says. */
  stop(): Promise<void> {
    this.stopped = true;
    this.pending = undefined;
    return this.speaker.stop({ mode: this.options.stopMode ?? 'graceful' });
  }

  private node(labels: Readonly<Record<string, string>> | undefined): SpeakerNode {
    const { nodeIPv4, nodeIPv6 } = this.options.addresses;
    return {
      name: this.options.nodeName,
      labels: labels ?? {},
      addresses: [nodeIPv4, nodeIPv6].filter((a) => a !== NO_IPV4 && a !== NO_IPV6),
    };
  }
}
