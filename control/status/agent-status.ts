// What a running agent says about itself on GET /status: readiness,
// leadership, the services its model derived (by name), the announcements,
// every decision that could surprise a user, and its BGP sessions. Pure: the
// agent hands in where each part comes from.
import type { Announcement, Decision, NodeDecision, NodeModel } from '../model/index.js';
import type { Readiness } from '../observe/server.js';

/**
 * One BGP session as `xlb status` shows it. The speaker fills these in
 * (control/bgp); until it is wired to the agent the list is empty.
 */
export interface BgpSessionStatus {
  peer: string;
  peerAsn: number;
  localAsn: number;
  /** The RFC 4271 FSM state: Idle, Connect, Active, OpenSent, OpenConfirm, Established. */
  state: string;
  /** Seconds since the session last reached (or left) its state; undefined when unknown. */
  sinceSeconds?: number;
  prefixesAdvertised?: number;
  prefixesReceived?: number;
  /** Why the session is not Established, when it is not (last NOTIFICATION, connect error). */
  lastError?: string;
}

export interface AgentServiceStatus {
  /** namespace/name */
  service: string;
  /** The unit key: `namespace/name:port/PROTO/vN`. */
  unit: string;
  /** VIP:port/PROTO, as the datapath's frontends are written. */
  frontends: string[];
  trafficPolicy: string;
  affinityTimeoutSeconds?: number;
  backends: Array<{
    address: string;
    port: number;
    state: string;
    local: boolean;
    nodeName?: string;
  }>;
}

export interface AgentStatus {
  node: string;
  mode: 'kubernetes' | 'standalone';
  ready: boolean;
  /** Why the agent is not ready, while it is not. */
  notReadyReason?: string;
  /** Whether this agent holds the Lease; null without an election (standalone). */
  leader: boolean | null;
  services: AgentServiceStatus[];
  announcements: Announcement[];
  decisions: Decision[];
  nodeDecisions: NodeDecision[];
  bgpSessions: BgpSessionStatus[];
}

/** Where the agent's status comes from; every part is read when /status is asked. */
export interface AgentStatusSource {
  node: string;
  mode: 'kubernetes' | 'standalone';
  readiness(): Readiness;
  /** undefined: no election runs (standalone). */
  leader(): boolean | undefined;
  /** The model last derived; undefined before the first derivation. */
  model(): NodeModel | undefined;
  bgpSessions?(): BgpSessionStatus[];
}

const endpoint = (a: string, p: number): string => (a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);

export function agentStatus(source: AgentStatusSource): AgentStatus {
  const r = source.readiness();
  const model = source.model();
  const leader = source.leader();
  return {
    node: source.node,
    mode: source.mode,
    ready: r.ready,
    ...(r.ready ? {} : { notReadyReason: r.reason }),
    leader: leader ?? null,
    services: (model?.units ?? []).map((u) => ({
      service: u.service,
      unit: u.key,
      frontends: u.frontends.map((f) => `${endpoint(f.address, f.port)}/${f.protocol}`),
      trafficPolicy: u.trafficPolicy,
      ...(u.affinityTimeoutSeconds !== undefined
        ? { affinityTimeoutSeconds: u.affinityTimeoutSeconds }
        : {}),
      backends: u.backends.map((b) => ({
        address: b.address,
        port: b.port,
        state: b.state,
        local: b.local,
        ...(b.nodeName !== undefined ? { nodeName: b.nodeName } : {}),
      })),
    })),
    announcements: model?.announcements ?? [],
    decisions: model?.decisions ?? [],
    nodeDecisions: model?.nodeDecisions ?? [],
    bgpSessions: source.bgpSessions?.() ?? [],
  };
}
