// The node's BGP speaker: keeps one BgpSession per BGPPeer selected for this
// node and makes each hold exactly the routes the model decided on (a /32 or
// /128 per LB IP, with the attributes of the advertisements selecting it).
// Level-triggered: every update() gets the whole configuration and the
// node's announcements and applies only the difference. A peer whose new
// configuration is invalid is reported and its running session kept as it
// was; only sessions whose settings changed are rebuilt. A peer with BFD
// enabled gets a BFD session (RFC 5880/5881) from the session's local
// address; its going down resets the BGP session at once (RFC 5882).
import net from 'node:net';

import { Gauge, type Registry } from 'prom-client';

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
import { BfdEndpoint, BfdState, Diag, type BfdSession, type SocketScope } from './bfd/index.js';
import type { BgpListener } from './listener.js';
import { BgpMetrics } from './metrics.js';
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

/**
 * connectTcp cannot bind a source address yet, so spec.sourceAddress is
 * honoured for incoming connections only (the listener) until it can.
 */
export const defaultPeerConnect: PeerConnect = ({ host, port, md5Key, ttl }) =>
  connectTcp({ host, port, ttl, ...(md5Key === undefined ? {} : { md5Key }) });

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
  /** Set while the plan enables BFD and its session could be started. */
  bfd?: BfdSession;
  bfdLocal?: string;
}

/** An endpoint per local address, shared by the peers using it. */
interface SharedEndpoint {
  endpoint: BfdEndpoint;
  users: number;
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
  private readonly endpoints = new Map<string, SharedEndpoint>();
  private stopped = false;

  constructor(private readonly options: BgpSpeakerOptions) {
    this.node = options.node;
    this.connect = options.connect ?? defaultPeerConnect;
    this.log = options.log ?? logger('bgp');
    this.metrics = options.registry === undefined ? undefined : new BgpMetrics(options.registry);
    if (options.registry !== undefined) this.registerBfdMetric(options.registry);
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

  /** The BFD sessions running, by BGPPeer name. */
  bfdSessions(): ReadonlyMap<string, BfdSession> {
    return new Map(
      [...this.running].flatMap(([name, r]) =>
        r.bfd === undefined ? [] : [[name, r.bfd] as const],
      ),
    );
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
      if (current !== undefined) this.close(name, 'configuration changed');
      try {
        this.open(plan);
      } catch (e) {
        // The session constructor checks what the schema cannot (e.g. families).
        const message = `BGPPeer '${name}': ${(e as Error).message}`;
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
      if (plan.bfd?.enabled === true && running.bfd === undefined) {
        const problem = this.startBfd(running);
        if (problem !== undefined) report.problems.push(problem);
      }
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

  /** Withdraws every route, closes every session (Cease / Administrative Shutdown). */
  async stop(message = 'xlb agent shutting down'): Promise<void> {
    this.stopped = true;
    for (const name of [...this.running.keys()]) this.close(name, message);
    await Promise.all([...this.closing]);
  }

  private open(plan: PeerPlan): void {
    const session = new BgpSession({
      ...plan.options,
      // The listener puts the key on its socket too, for the peer's own connections.
      ...(plan.md5Key === undefined ? {} : { md5Password: plan.md5Key }),
      ...(plan.gracefulRestart?.enabled === true
        ? { gracefulRestart: { restartTimeSeconds: plan.gracefulRestart.restartTime } }
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
    this.options.listener?.add(session);
    this.metrics?.track(plan.name, session);
    session.start();
    this.log.info({ peer: plan.name, address: plan.options.peerAddress }, 'BGP session started');
  }

  /** Starts the BFD session of a running peer; the problem, if it cannot. */
  private startBfd(r: Running): string | undefined {
    const { plan, session } = r;
    const bfd = plan.bfd!;
    const { peerAddress, localAddress, nextHops } = plan.options;
    const local = localAddress ?? (net.isIPv6(peerAddress) ? nextHops?.ipv6 : nextHops?.ipv4);
    if (local === undefined) {
      return (
        `BGPPeer '${plan.name}': BFD not started: this node has no ` +
        `${net.isIPv6(peerAddress) ? 'IPv6' : 'IPv4'} address to run it from`
      );
    }
    let shared = this.endpoints.get(local);
    try {
      if (shared === undefined) {
        shared = {
          endpoint: new BfdEndpoint({
            localAddress: local,
            ...(this.options.scope === undefined ? {} : { scope: this.options.scope }),
            log: this.log,
          }),
          users: 0,
        };
        this.endpoints.set(local, shared);
      }
      r.bfd = shared.endpoint.session({
        peerAddress,
        timing: {
          desiredMinTxUs: bfd.minTxMs * 1000,
          requiredMinRxUs: bfd.minRxMs * 1000,
          detectMult: bfd.detectMultiplier,
        },
      });
    } catch (e) {
      if (shared !== undefined && shared.users === 0) this.releaseEndpoint(local);
      return `BGPPeer '${plan.name}': BFD not started from ${local}: ${(e as Error).message}`;
    }
    shared.users++;
    r.bfdLocal = local;
    r.bfd.on('up', () => this.log.info({ peer: plan.name, peerAddress }, 'BFD session up'));
    r.bfd.on('down', (diag) => {
      const why = `BFD: peer ${peerAddress} unreachable (${Diag[diag] ?? `diagnostic ${diag}`})`;
      this.log.warn({ peer: plan.name, diag: Diag[diag] }, 'BFD session down; resetting BGP');
      session.bfdDown(why);
    });
    r.bfd.on('peerAdminDown', () =>
      this.log.info(
        { peer: plan.name, peerAddress },
        'BFD taken down by the peer administratively; the BGP session is left alone',
      ),
    );
    return undefined;
  }

  private releaseEndpoint(local: string): void {
    const shared = this.endpoints.get(local);
    if (shared === undefined) return;
    shared.users--;
    if (shared.users > 0) return;
    this.endpoints.delete(local);
    shared.endpoint.close();
  }

  private close(name: string, why: string): void {
    const r = this.running.get(name);
    if (r === undefined) return;
    this.running.delete(name);
    this.options.listener?.remove(r.session);
    this.metrics?.untrack(name);
    // Withdraw first and let the UPDATE go out (the session sends once per
    // turn of the event loop) before the Cease: a peer that negotiated
    // graceful restart keeps a closed session's routes as stale otherwise.
    r.session.withdraw(r.session.routes());
    const done = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => {
        const stopped = r.session.stop(why);
        // After the Cease has gone out, AdminDown: the peer must not take our
        // leaving for a path failure (BIRD does while the BGP session is up).
        if (r.bfd !== undefined) {
          r.bfd.close({ notifyPeer: true });
          this.releaseEndpoint(r.bfdLocal!);
        }
        return stopped;
      })
      .catch((e: unknown) => {
        this.log.warn({ peer: name, err: e }, 'closing the BGP session failed');
      });
    this.closing.add(done);
    void done.finally(() => this.closing.delete(done));
    this.log.info({ peer: name, why }, 'BGP session stopped');
  }
}
