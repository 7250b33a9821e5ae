// The node's BGP speaker: keeps one BgpSession per BGPPeer selected for this
// node and makes each hold exactly the routes the model decided on (a /32 or
// /128 per LB IP, with the attributes of the advertisements selecting it).
// Level-triggered: every update() gets the whole configuration and the
// node's announcements and applies only the difference. A peer whose new
// configuration is invalid is reported and its running session kept as it
// was; only sessions whose settings changed are rebuilt. A peer with BFD
// enabled gets a BFD session (RFC 5880/5881) from the session's local
// address (peer-bfd.ts); its going down resets the BGP session at once (RFC
// 5882), and it carries on across a rebuild that changes no BFD setting and
// no address.
//
// Graceful restart (RFC 4724) as the restarting speaker: a graceful stop()
// leaves the routes of every peer that negotiated it with that peer (closed
// without a NOTIFICATION), so the router keeps forwarding to the node while
// the agent restarts; other peers get a withdrawal and a Cease. A speaker
// started as a restart opens its sessions with the Restart State bit (and
// the Forwarding State bit when the datapath kept forwarding), and holds
// End-of-RIB until ribComplete(): the routes sent by then replace the stale
// ones, and the rest leave the peer at End-of-RIB. A peer running BFD with
// us sees AdminDown at any stop (a process cannot keep BFD running across
// its own restart); RFC 5882 says that is no failure, but BIRD 2 may take
// it for one and drop the routes unless its session has `bfd graceful`.
import type net from 'node:net';

import { Counter, Gauge, type Registry } from 'prom-client';

import type { Announcement } from '../model/types.js';
import type { IPPool } from '../resources/ip-pool.js';
import { connectTcp } from '../../native/index.js';
import { logger, type Logger } from '../observe/log.js';

import {
  BgpConfigError,
  indexPools,
  peerSelected,
  planPeer,
  routesForPeer,
  validAdvertisements,
  wantedAddresses,
  type PeerPlan,
  type SecretLookup,
  type SessionDefaults,
  type SpeakerNode,
} from './config.js';
import { BfdState, type BfdSession, type SocketScope } from './bfd/index.js';
import type { BgpListener } from './listener.js';
import { BgpMetrics } from './metrics.js';
import { PeerBfd } from './peer-bfd.js';
import { BgpSession } from './session.js';
import { bgpPeerSchema } from '../resources/bgp-peer.js';

/** Opens a session's TCP connection with the peer's MD5 key and TTL set before the SYN. */
export type PeerConnect = (target: {
  host: string;
  port: number;
  localAddress?: string;
  md5Key?: string;
  ttl: number;
}) => net.Socket;

/** connectTcp binds the socket to localAddress (spec.sourceAddress) before its SYN. */
export const defaultPeerConnect: PeerConnect = ({ host, port, localAddress, md5Key, ttl }) =>
  connectTcp({
    host,
    port,
    ttl,
    ...(localAddress === undefined ? {} : { localAddress }),
    ...(md5Key === undefined ? {} : { md5Key }),
  });

/**
 * How stop() leaves the peers. graceful: peers that negotiated graceful
 * restart keep our routes for their restart time (the connection closes
 * without a NOTIFICATION), the others get withdraw; withdraw: every route is
 * withdrawn and every session closed with a Cease (a node leaving for good).
 */
export type StopMode = 'graceful' | 'withdraw';

/** This speaker replaces one whose routes the peers may still hold. */
export interface SpeakerRestart {
  /** The datapath kept forwarding across the restart: the F bit of each family. */
  forwardingPreserved: boolean;
}

export interface BgpSpeakerOptions {
  node: SpeakerNode;
  connect?: PeerConnect;
  /** Where peers' own connections arrive (port 179); sessions are added and removed here. */
  listener?: BgpListener;
  /** Reads the MD5 password a BGPPeer's passwordSecretRef names. */
  secrets?: SecretLookup;
  /** Back-off and timers for every session (tests shorten them). */
  sessionDefaults?: SessionDefaults;
  registry?: Registry;
  log?: Logger;
  /**
   * Runs the creation of BFD sockets; the agent enters the uplink's network
   * namespace here, as its `connect` does for the sessions. Default: as is.
   */
  scope?: SocketScope;
  /**
   * Set when this process restarts a speaker (graceful restart): sessions
   * opened before ribComplete() carry the Restart State bit and hold
   * End-of-RIB until then.
   */
  restart?: SpeakerRestart;
}

/** Everything the speaker acts on; each call replaces the previous one whole. */
export interface SpeakerInput {
  /** BGPPeer objects (validated again here: a bad one is reported, not run). */
  peers: readonly unknown[];
  advertisements: readonly unknown[];
  pools: readonly IPPool[];
  /** This node's announcements from the model (NodeModel.announcements). */
  announcements: readonly Announcement[];
  /** The node's labels or addresses changed. */
  node?: SpeakerNode;
}

export type PeerStatus =
  | { name: string; status: 'running'; state: string; routes: number }
  | { name: string; status: 'notSelected' }
  | { name: string; status: 'invalid'; message: string; kept: boolean };

export interface SpeakerReport {
  peers: PeerStatus[];
  /** Invalid peers and advertisements, and routes a session refused, each a sentence. */
  problems: string[];
}

interface Running {
  plan: PeerPlan;
  session: BgpSession;
}

function nameOf(raw: unknown): string {
  const name = (raw as { metadata?: { name?: unknown } } | undefined)?.metadata?.name;
  return typeof name === 'string' && name !== '' ? name : '<unnamed>';
}

export class BgpSpeaker {
  private node: SpeakerNode;
  private readonly running = new Map<string, Running>();
  private readonly closing = new Set<Promise<void>>();
  private readonly connect: PeerConnect;
  private readonly log: Logger;
  private readonly metrics: BgpMetrics | undefined;
  private readonly bfd: PeerBfd;
  /** Sessions opened now are part of a restart (until ribComplete()). */
  private restarting: boolean;
  private stopped = false;

  constructor(private readonly options: BgpSpeakerOptions) {
    this.node = options.node;
    this.connect = options.connect ?? defaultPeerConnect;
    this.log = options.log ?? logger('bgp');
    this.restarting = options.restart !== undefined;
    this.bfd = new PeerBfd({
      log: this.log,
      ...(options.scope === undefined ? {} : { scope: options.scope }),
    });
    this.metrics = options.registry === undefined ? undefined : new BgpMetrics(options.registry);
    if (options.registry !== undefined) {
      this.registerBfdMetric(options.registry);
      this.registerBfdDiscardMetric(options.registry);
    }
  }

  /** xlb_bfd_session_up{peer}: 1 while a peer's BFD session is Up, 0 otherwise. */
  private registerBfdMetric(registry: Registry): void {
    const name = 'xlb_bfd_session_up';
    if (registry.getSingleMetric(name) !== undefined) return;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    new Gauge({
      name,
      help: 'BFD session per BGP peer: 1 Up, 0 not Up (peers without BFD have no series)',
      labelNames: ['peer'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [peer, bfd] of self.bfdSessions())
          this.set({ peer }, bfd.state === BfdState.Up ? 1 : 0);
      },
    });
  }

  /**
   * xlb_bfd_packets_discarded_total{local, reason}: BFD packets an endpoint
   * dropped (lowTtl: below TTL 255, dropped by the kernel's socket filter).
   */
  private registerBfdDiscardMetric(registry: Registry): void {
    const name = 'xlb_bfd_packets_discarded_total';
    if (registry.getSingleMetric(name) !== undefined) return;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    new Counter({
      name,
      help: 'BFD packets discarded per local address and reason (lowTtl: TTL below 255, RFC 5881)',
      labelNames: ['local', 'reason'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [local, stats] of self.bfd.endpointStats())
          for (const [reason, n] of Object.entries(stats.discarded))
            if (n !== undefined && n > 0) this.inc({ local, reason }, n);
      },
    });
  }

  /** The BFD sessions running, by BGPPeer name. */
  bfdSessions(): ReadonlyMap<string, BfdSession> {
    return this.bfd.sessions();
  }

  /** The sessions running, by BGPPeer name. */
  sessions(): ReadonlyMap<string, BgpSession> {
    return new Map([...this.running].map(([name, r]) => [name, r.session]));
  }

  update(input: SpeakerInput): SpeakerReport {
    if (this.stopped) throw new Error('the BGP speaker is stopped');
    if (input.node !== undefined) this.node = input.node;
    const report: SpeakerReport = { peers: [], problems: [] };
    const keep = new Set<string>();
    for (const raw of input.peers) {
      const name = nameOf(raw);
      let plan: PeerPlan;
      try {
        const parsed = bgpPeerSchema.safeParse(raw);
        if (parsed.success && !peerSelected(parsed.data, this.node)) {
          report.peers.push({ name, status: 'notSelected' });
          continue;
        }
        plan = planPeer(raw, this.node, this.options.secrets, this.options.sessionDefaults);
      } catch (e) {
        if (!(e instanceof BgpConfigError)) throw e;
        // The session running on the last good settings carries on.
        const kept = this.running.has(name);
        if (kept) keep.add(name);
        report.peers.push({ name, status: 'invalid', message: e.message, kept });
        report.problems.push(
          kept ? `${e.message} (the running session keeps its settings)` : e.message,
        );
        continue;
      }
      keep.add(name);
      const current = this.running.get(name);
      if (current?.plan.key === plan.key) continue;
      const keepBfd = current !== undefined && this.bfd.keeps(current.plan, plan);
      if (current !== undefined) this.close(name, 'configuration changed', { keepBfd });
      try {
        this.open(plan);
      } catch (e) {
        // The session constructor checks what the schema cannot (e.g. families).
        const message = `BGPPeer '${name}': ${(e as Error).message}`;
        if (keepBfd) this.bfd.stop(name);
        keep.delete(name);
        report.peers.push({ name, status: 'invalid', message, kept: false });
        report.problems.push(message);
      }
    }
    for (const name of [...this.running.keys()]) {
      if (!keep.has(name)) this.close(name, 'peer removed or no longer selected for this node');
    }

    const ads = validAdvertisements(input.advertisements);
    report.problems.push(...ads.problems);
    const wanted = wantedAddresses(input.announcements);
    const pools = indexPools(input.pools);
    for (const [name, running] of this.running) {
      const { session, plan } = running;
      // Retried on every update until it starts (an address not yet there).
      const problem = this.bfd.ensure(plan, session);
      if (problem !== undefined) report.problems.push(problem);
      const routes = routesForPeer(plan.peerName, wanted, ads.advertisements, pools);
      const prefixes = new Set(routes.map((r) => r.prefix));
      const gone = session.routes().filter((p) => !prefixes.has(p));
      if (gone.length > 0) session.withdraw(gone);
      const result = session.announce(routes);
      for (const r of result.rejected) {
        report.problems.push(`BGPPeer '${name}': route ${r.prefix} not announced: ${r.reason}`);
      }
      if (!report.peers.some((p) => p.name === name)) {
        report.peers.push({
          name,
          status: 'running',
          state: session.state,
          routes: session.routes().length,
        });
      }
    }
    report.peers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const p of report.problems) this.log.warn({ problem: p }, 'BGP configuration problem');
    return report;
  }

  /**
   * After a restart: the routes are complete (the agent applied its model),
   * so End-of-RIB goes to every session and the peers drop the stale routes
   * we did not announce again. Sessions opened from now on are no restart.
   */
  ribComplete(): void {
    if (!this.restarting) return;
    this.restarting = false;
    for (const { session } of this.running.values()) session.ribComplete();
  }

  /**
   * Closes every session, leaving the peers as `mode` says (default
   * withdraw), and logs per peer which it did. Resolves once closed.
   */
  async stop(options: { mode?: StopMode; message?: string } = {}): Promise<void> {
    const { mode = 'withdraw', message = 'xlb agent shutting down' } = options;
    this.stopped = true;
    for (const name of [...this.running.keys()]) {
      this.close(name, message, { graceful: mode === 'graceful' });
    }
    await Promise.all([...this.closing]);
  }

  private open(plan: PeerPlan): void {
    const gr = plan.gracefulRestart;
    const restart = this.restarting ? this.options.restart : undefined;
    const session = new BgpSession({
      ...plan.options,
      // The listener puts the key on its socket too, for the peer's own connections.
      ...(plan.md5Key === undefined ? {} : { md5Password: plan.md5Key }),
      ...(gr?.enabled === true
        ? {
            gracefulRestart: {
              restartTimeSeconds: gr.restartTime,
              ...(restart === undefined
                ? {}
                : { restarting: true, forwardingPreserved: restart.forwardingPreserved }),
            },
          }
        : {}),
      connect: ({ host, port, localAddress }) =>
        this.connect({
          host,
          port,
          ttl: plan.ttl,
          ...(localAddress === undefined ? {} : { localAddress }),
          ...(plan.md5Key === undefined ? {} : { md5Key: plan.md5Key }),
        }),
      log: this.log,
    });
    this.running.set(plan.name, { plan, session });
    this.bfd.rebind(plan.name, session);
    this.options.listener?.add(session);
    this.metrics?.track(plan.name, session);
    session.start();
    this.log.info(
      {
        peer: plan.name,
        address: plan.options.peerAddress,
        ...(plan.options.localAddress === undefined ? {} : { from: plan.options.localAddress }),
        ...(restart === undefined || gr?.enabled !== true
          ? {}
          : { restarting: true, forwardingPreserved: restart.forwardingPreserved }),
      },
      'BGP session started',
    );
  }

  /**
   * Stops a peer's session. graceful: when the peer negotiated graceful
   * restart, the routes stay with it and the connection closes without a
   * NOTIFICATION; otherwise they are withdrawn and a Cease follows. keepBfd:
   * the peer's BFD session carries on for the session that replaces this one.
   */
  private close(
    name: string,
    why: string,
    how: { graceful?: boolean; keepBfd?: boolean } = {},
  ): void {
    const r = this.running.get(name);
    if (r === undefined) return;
    this.running.delete(name);
    this.options.listener?.remove(r.session);
    this.metrics?.untrack(name);
    const graceful = how.graceful === true && r.session.gracefulRestartNegotiated;
    const routes = r.session.routes().length;
    // Withdraw first and let the UPDATE go out (the session sends once per
    // turn of the event loop) before the Cease: a peer that negotiated
    // graceful restart keeps a closed session's routes as stale otherwise.
    if (!graceful) r.session.withdraw(r.session.routes());
    const closeBfd = how.keepBfd === true ? undefined : this.bfd.detach(name);
    const done = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => {
        const stopped = r.session.stop(why, { graceful });
        // After the Cease has gone out, AdminDown: the peer must not take our
        // leaving for a path failure (BIRD does while the BGP session is up).
        closeBfd?.();
        return stopped;
      })
      .catch((e: unknown) => {
        this.log.warn({ peer: name, err: e }, 'closing the BGP session failed');
      });
    this.closing.add(done);
    void done.finally(() => this.closing.delete(done));
    if (graceful) {
      const restartTime = r.plan.gracefulRestart?.restartTime;
      this.log.info(
        { peer: name, why, stop: 'graceful', routes, restartTime },
        `BGP session closed without a NOTIFICATION: the peer keeps our ${routes} routes for up to ${restartTime} s (graceful restart)`,
      );
    } else {
      const reason =
        how.graceful === true
          ? r.plan.gracefulRestart?.enabled === true
            ? 'graceful restart not negotiated with the peer (or the session is not Established)'
            : 'graceful restart not enabled for this peer (spec.gracefulRestart.enabled)'
          : undefined;
      this.log.info(
        { peer: name, why, stop: 'withdraw', routes, ...(reason === undefined ? {} : { reason }) },
        `BGP session stopped: ${routes} routes withdrawn, Cease sent`,
      );
    }
  }
}
