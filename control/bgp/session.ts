// A BGP session with one peer: the only part of control/bgp that does I/O.
// It runs the pure FSM (fsm.ts) over node:net sockets and timers, holds the
// routes to announce (the Adj-RIB-Out) and sends them in packed UPDATEs with
// End-of-RIB after the initial burst, answers every malformed message with
// its NOTIFICATION, resolves connection collisions, and restarts with
// back-off after failures. Nothing a peer sends, and no failure of the
// network, throws out of it: they become state changes, logs and counters.
// Graceful restart (RFC 4724) as the restarting speaker: stop({graceful})
// closes without a NOTIFICATION when both sides advertised the capability,
// so the peer keeps our routes while the next process starts; that process
// sets the Restart State bit and holds End-of-RIB until ribComplete().
import { EventEmitter } from 'node:events';
import net from 'node:net';

import {
  GracefulRestartFlag,
  GracefulRestartForwarding,
  Safi,
  type Capability,
} from './codec/capabilities.js';
import { afiOf, familyOf, type CodecContext } from './codec/attributes.js';
import { CeaseSubcode, describeNotification, ErrorCode, OpenSubcode } from './codec/errors.js';
import { MessageType } from './codec/header.js';
import { decodeMessage, encodeMessage, type BgpMessage } from './codec/message.js';
import { shutdownMessage, type NotificationMessage } from './codec/notification.js';
import { asnOf, buildOpen, capabilitiesOf, validateOpen, type OpenMessage } from './codec/open.js';
import { parsePrefix, type Family } from './codec/prefix.js';
import { endOfRib, type UpdateMessage } from './codec/update.js';
import { collisionWinner } from './collision.js';
import { Connection } from './connection.js';
import type { Frame } from './framer.js';
import {
  INITIAL_STATE,
  step,
  type FsmConfig,
  type FsmEvent,
  type FsmState,
  type State,
  type TimerName,
} from './fsm.js';
import { checkReceivedUpdate } from './received.js';
import { AdjRibOut, groupByAttributes } from './rib-out.js';
import { exportAttributes, normalizeRoute, type NormalizedRoute, type Route } from './routes.js';
import { DEFAULT_BACKOFF, type BackoffSettings } from './timers.js';
import { applySocketTtls, socketTtls, unansweredHint, type SocketTtls } from './transport.js';
import { buildAnnouncements, buildWithdrawals, type NextHops } from './update-builder.js';
import { logger, type Logger } from '../observe/log.js';
import { connectTcp } from '../../native/socket.js';

export const BGP_PORT = 179;

/**
 * Makes the outgoing TCP connection (injectable: network namespaces, tests).
 * The MD5 password and TTLs must be on the socket before its SYN leaves; the
 * session sets the TTLs again once connected, but only the connect function
 * can put the MD5 key in place in time.
 */
export type ConnectFunction = (target: {
  host: string;
  port: number;
  localAddress?: string;
  md5Password?: string;
  ttl?: number;
  minTtl?: number;
}) => net.Socket;

export const defaultConnect: ConnectFunction = (t) => {
  const local = t.localAddress === undefined ? {} : { localAddress: t.localAddress };
  if (t.md5Password === undefined && t.ttl === undefined && t.minTtl === undefined) {
    return net.connect({ host: t.host, port: t.port, ...local });
  }
  return connectTcp({
    host: t.host,
    port: t.port,
    ...local,
    ...(t.md5Password === undefined ? {} : { md5Key: t.md5Password }),
    ...(t.ttl === undefined ? {} : { ttl: t.ttl }),
    ...(t.minTtl === undefined ? {} : { minTtl: t.minTtl }),
  });
};

/** Graceful restart (RFC 4724) as the restarting speaker. */
export interface GracefulRestartOptions {
  /** How long the peer keeps our routes after the session drops without a NOTIFICATION: 0..4095 s. */
  restartTimeSeconds: number;
  /**
   * This process is a restart of a speaker whose routes the peer may still
   * hold: the first OPEN carries the Restart State (R) bit, and End-of-RIB
   * waits for ribComplete() (or restartTimeSeconds) so the peer does not drop
   * routes we have not re-announced yet.
   */
  restarting?: boolean;
  /** The datapath keeps forwarding while the agent is down (the F bit). Default true. */
  forwardingPreserved?: boolean;
}

export interface SessionOptions {
  localAs: number;
  peerAs: number;
  /** Our BGP identifier (dotted quad). */
  routerId: string;
  peerAddress: string;
  /** The peer's port for outgoing connections. */
  peerPort?: number;
  /** Source address of outgoing connections. */
  localAddress?: string;
  /** Hold time we offer, seconds: 0 or 3..65535. Default 90. */
  holdTime?: number;
  /**
   * Seconds between our keepalives: 1..65535. Capped at a third of the
   * negotiated hold time, which it defaults to.
   */
  keepaliveTime?: number;
  /** Refuse peers offering a shorter hold time (other than 0). Default 3. */
  minHoldTime?: number;
  /** Only accept connections (through a BgpListener), never connect. */
  passive?: boolean;
  /** Families to negotiate. Default both. */
  families?: readonly Family[];
  /** Next hops per family; by default the session's own address for its family. */
  nextHops?: NextHops;
  /** How long one connection attempt may take. Default 30 s. */
  connectRetryMs?: number;
  /** How long to wait for the peer's OPEN. Default 240 s (RFC 4271). */
  openHoldMs?: number;
  backoff?: Partial<BackoffSettings>;
  /** Time Established after which the back-off starts afresh. Default 60 s. */
  stableMs?: number;
  /** Refuse an external peer's routes whose AS_PATH does not start with its AS. Default true. */
  enforceFirstAs?: boolean;
  connect?: ConnectFunction;
  log?: Logger;
  random?: () => number;
  /** TCP MD5 password (RFC 2385), 1..80 bytes; a BgpListener gives it to its socket too. */
  md5Password?: string;
  /** GTSM (RFC 5082): send with TTL 255, refuse packets arriving with less. */
  ttlSecurity?: boolean;
  /** TTL for an eBGP peer this many hops away (with ttlSecurity: the hops GTSM allows). */
  multihopTtl?: number;
  gracefulRestart?: GracefulRestartOptions;
}

export interface NotificationEvent {
  direction: 'sent' | 'received';
  code: number;
  subcode: number;
  data: Buffer;
  /** 'Cease / Administrative Shutdown (6/2)', plus the shutdown communication if any. */
  text: string;
}

export interface SessionStats {
  messagesReceived: number;
  messagesSent: number;
  updatesReceived: number;
  updatesSent: number;
  notificationsReceived: number;
  notificationsSent: number;
  /** Bugs caught at the session's edge (should stay 0). */
  internalErrors: number;
  /** Exceptions thrown by event listeners (logged; the session carries on). */
  listenerErrors: number;
}

export interface AnnounceResult {
  accepted: number;
  rejected: { prefix: string; reason: string }[];
}

export interface SessionEvents {
  state: [to: State, from: State, reason: string | undefined];
  established: [peer: OpenMessage];
  /** An UPDATE from the peer (routes it announces or withdraws). */
  update: [update: UpdateMessage];
  /** Left Established: every route the peer announced is gone. */
  peerRoutesReleased: [];
  notification: [event: NotificationEvent];
}

/** Next hops of the largest size, to check that a route's attributes fit in a message. */
const PLACEHOLDER_NEXT_HOPS: NextHops = {
  ipv4: '192.0.2.1',
  ipv6: '2001:db8::1',
  ipv6LinkLocal: 'fe80::1',
};

const TIMER_EVENTS: Record<TimerName, FsmEvent['type']> = {
  connectRetry: 'ConnectRetryTimer_Expires',
  hold: 'HoldTimer_Expires',
  keepalive: 'KeepaliveTimer_Expires',
  idleHold: 'IdleHoldTimer_Expires',
  stable: 'StableTimer_Expires',
};

function cease(subcode: number): NotificationMessage {
  return { type: 'notification', code: ErrorCode.Cease, subcode, data: Buffer.alloc(0) };
}

function unmapped(address: string | undefined): string | undefined {
  return address?.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function sameAddress(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  try {
    return parsePrefix(unmapped(a)!).bytes.equals(parsePrefix(b).bytes);
  } catch {
    return false;
  }
}

/** A second, incoming connection while the FSM's own is between OPEN and Established. */
interface Candidate {
  conn: Connection;
  timer: NodeJS.Timeout;
}

export class BgpSession extends EventEmitter<SessionEvents> {
  readonly stats: SessionStats = {
    messagesReceived: 0,
    messagesSent: 0,
    updatesReceived: 0,
    updatesSent: 0,
    notificationsReceived: 0,
    notificationsSent: 0,
    internalErrors: 0,
    listenerErrors: 0,
  };
  private fsm: FsmState = INITIAL_STATE;
  private config: FsmConfig;
  private readonly ttls: SocketTtls;
  /** End-of-RIB waits for ribComplete() (graceful restart). */
  private endOfRibHeld: boolean;
  private endOfRibTimer: NodeJS.Timeout | undefined;
  /** The FSM's lastError, or a more telling reason the session found for the same failure. */
  private lastFailure: string | undefined;
  /** A timer whose expiry means more than the FSM can tell: the reason to report with it. */
  private timerReason: { event: FsmEvent['type']; reason: string } | undefined;
  private readonly families: readonly Family[];
  private readonly log: Logger;
  private readonly connectFn: ConnectFunction;
  private conn: Connection | undefined;
  private candidate: Candidate | undefined;
  private readonly timers = new Map<TimerName, NodeJS.Timeout>();
  private readonly rib = new AdjRibOut();
  private flushScheduled = false;
  /** Per session: negotiated families and codec context, set on Established. */
  private negotiated: { families: Set<Family>; ctx: CodecContext; nextHops: NextHops } | undefined;
  private busy = false;
  private readonly queue: FsmEvent[] = [];

  constructor(readonly options: SessionOptions) {
    super();
    const holdTime = options.holdTime ?? 90;
    if (holdTime !== 0 && (holdTime < 3 || holdTime > 0xffff || !Number.isInteger(holdTime))) {
      throw new RangeError(`hold time ${holdTime} s: must be 0 or an integer in 3..65535`);
    }
    const keepalive = options.keepaliveTime;
    if (
      keepalive !== undefined &&
      (!Number.isInteger(keepalive) || keepalive < 1 || keepalive > 0xffff)
    ) {
      throw new RangeError(`keepalive time ${keepalive} s: must be an integer in 1..65535`);
    }
    for (const [what, asn] of [
      ['local', options.localAs],
      ['peer', options.peerAs],
    ] as const) {
      if (!Number.isInteger(asn) || asn < 1 || asn > 0xffffffff) {
        throw new RangeError(`${what} AS ${asn} is not in 1..4294967295`);
      }
    }
    this.families = options.families ?? ['ipv4', 'ipv6'];
    const capabilities: Capability[] = [
      ...this.families.map((f) => ({
        kind: 'multiprotocol' as const,
        afi: afiOf(f),
        safi: Safi.Unicast,
      })),
      { kind: 'routeRefresh' },
    ];
    const gr = options.gracefulRestart;
    if (gr !== undefined) {
      const t = gr.restartTimeSeconds;
      if (!Number.isInteger(t) || t < 0 || t > 4095) {
        throw new RangeError(`graceful restart time ${t} s: must be an integer in 0..4095`);
      }
      capabilities.push(
        this.gracefulRestartCapability(gr.restarting === true, gr.forwardingPreserved ?? true),
      );
    }
    this.ttls = socketTtls(options);
    this.endOfRibHeld = gr?.restarting === true;
    if (!/^(\d{1,3})(\.\d{1,3}){3}$/.test(options.routerId) || options.routerId === '0.0.0.0') {
      throw new RangeError(`router id '${options.routerId}' is not a non-zero dotted quad`);
    }
    const open = buildOpen({
      asn: options.localAs,
      holdTime,
      bgpId: options.routerId,
      capabilities,
    });
    // Throws RangeError on an octet above 255, before anything is sent.
    encodeMessage(open);
    this.config = {
      open,
      passive: options.passive ?? false,
      connectRetryMs: options.connectRetryMs ?? 30_000,
      openHoldMs: options.openHoldMs ?? 240_000,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      stableMs: options.stableMs ?? 60_000,
      ...(keepalive === undefined ? {} : { keepaliveSeconds: keepalive }),
      random: options.random ?? Math.random,
    };
    this.connectFn = options.connect ?? defaultConnect;
    this.log = (options.log ?? logger('bgp')).child({ peer: options.peerAddress });
  }

  private gracefulRestartCapability(restarting: boolean, forwardingPreserved: boolean): Capability {
    const gr = this.options.gracefulRestart!;
    const forwarding = forwardingPreserved ? GracefulRestartForwarding : 0;
    return {
      kind: 'gracefulRestart',
      flags: restarting ? GracefulRestartFlag.Restarting : 0,
      restartTime: gr.restartTimeSeconds,
      families: (this.options.families ?? ['ipv4', 'ipv6']).map((f) => ({
        afi: afiOf(f),
        safi: Safi.Unicast,
        flags: forwarding,
      })),
    };
  }

  get state(): State {
    return this.fsm.state;
  }

  /**
   * Why the session last fell back to Idle, or why its connection attempts
   * get nowhere (with MD5 or GTSM on: the likely cause).
   */
  get lastError(): string | undefined {
    return this.lastFailure;
  }

  /**
   * After a restart (gracefulRestart.restarting): every route is announced
   * again, so End-of-RIB may go out and the peer drops the stale routes we
   * did not re-announce. Does nothing otherwise.
   */
  ribComplete(): void {
    if (!this.endOfRibHeld) return;
    this.endOfRibHeld = false;
    if (this.endOfRibTimer !== undefined) clearTimeout(this.endOfRibTimer);
    this.endOfRibTimer = undefined;
    this.guard(() => {
      if (this.fsm.state !== 'Established' || this.negotiated === undefined) return;
      this.flush();
      for (const f of this.negotiated.families) this.send(endOfRib(f));
      this.log.info('End-of-RIB sent: the routes of the restart are complete');
    });
  }

  /**
   * Established, and both OPENs carried the graceful restart capability: a
   * graceful stop() leaves our routes with the peer (as stale) for the
   * restart time.
   */
  get gracefulRestartNegotiated(): boolean {
    const peer = this.fsm.peer;
    return (
      this.options.gracefulRestart !== undefined &&
      this.fsm.state === 'Established' &&
      peer !== undefined &&
      capabilitiesOf(peer).some((c) => c.kind === 'gracefulRestart')
    );
  }

  /** The peer's OPEN, once received (OpenConfirm and Established). */
  get peerOpen(): OpenMessage | undefined {
    return this.fsm.peer;
  }

  get internal(): boolean {
    return this.options.localAs === this.options.peerAs;
  }

  start(): void {
    this.feed({ type: 'ManualStart' });
  }

  /**
   * Sends Cease / Administrative Shutdown (with message as the shutdown
   * communication), closes, and stays down. With `graceful` and graceful
   * restart negotiated, closes the connection without a NOTIFICATION
   * instead: RFC 4724 (without RFC 8538) has the peer flush our routes on a
   * Cease, and keep them as stale on a bare close. Resolves once the
   * connection is closed.
   */
  async stop(message?: string, options: { graceful?: boolean } = {}): Promise<void> {
    if (this.endOfRibTimer !== undefined) clearTimeout(this.endOfRibTimer);
    this.endOfRibTimer = undefined;
    const graceful = options.graceful === true && this.gracefulRestartNegotiated;
    const closing = [this.conn, this.candidate?.conn].flatMap((c) => (c ? [c.closed] : []));
    this.dropCandidate(CeaseSubcode.AdministrativeShutdown);
    this.feed({
      type: 'ManualStop',
      ...(message === undefined ? {} : { message }),
      ...(graceful ? { graceful } : {}),
    });
    await Promise.all(closing);
  }

  /**
   * The BFD session tied to this one says the path to the peer failed (RFC
   * 5882 section 4.3): resets the session without a NOTIFICATION (the peer
   * cannot hear it), releases the peer's routes and backs off before trying
   * again, as a lost TCP connection does. Does nothing without a connection
   * that got as far as OPEN, or once stopped.
   */
  bfdDown(reason = 'BFD: the peer is unreachable'): void {
    this.dropCandidate();
    if (!['OpenSent', 'OpenConfirm', 'Established'].includes(this.fsm.state)) return;
    // lastError says BFD, not "connection lost".
    this.timerReason = { event: 'TcpConnectionFails', reason };
    this.feed({ type: 'TcpConnectionFails', reason });
  }

  /**
   * Adds or replaces routes. Invalid ones are refused with the reason, the
   * rest go out at once if the session is up, or when it comes up.
   */
  announce(routes: readonly Route[]): AnnounceResult {
    const result: AnnounceResult = { accepted: 0, rejected: [] };
    for (const r of routes) {
      try {
        const n = normalizeRoute(r, this.options.localAs);
        this.checkFits(n);
        this.rib.set(n);
        result.accepted++;
      } catch (e) {
        result.rejected.push({ prefix: String(r.prefix), reason: (e as Error).message });
      }
    }
    this.scheduleFlush();
    return result;
  }

  /** Throws if the route's attributes could not go out in a message, whatever the peer. */
  private checkFits(r: NormalizedRoute): void {
    const worst = exportAttributes(r.attributes, {
      localAs: this.options.localAs,
      internal: this.internal,
      fourOctetAs: false,
    });
    buildAnnouncements([r.prefix], worst, PLACEHOLDER_NEXT_HOPS, { fourOctetAs: false });
  }

  /** Withdraws routes by prefix; prefixes not announced are ignored. */
  withdraw(prefixes: readonly string[]): AnnounceResult {
    const result: AnnounceResult = { accepted: 0, rejected: [] };
    for (const p of prefixes) {
      try {
        const n = normalizeRoute({ prefix: p }, this.options.localAs);
        this.rib.delete(n.prefix);
        result.accepted++;
      } catch (e) {
        result.rejected.push({ prefix: String(p), reason: (e as Error).message });
      }
    }
    this.scheduleFlush();
    return result;
  }

  /** The routes this session announces (or will once up). */
  routes(): string[] {
    return this.rib.prefixes();
  }

  /**
   * Hands over a connection accepted by a listener. The session decides:
   * take it, hold it for collision resolution, or refuse it.
   */
  acceptConnection(socket: net.Socket): void {
    this.guard(() => {
      if (!sameAddress(socket.remoteAddress, this.options.peerAddress)) {
        this.log.warn({ from: socket.remoteAddress }, 'refused a connection from another address');
        socket.destroy();
        return;
      }
      try {
        applySocketTtls(socket, this.ttls);
      } catch (e) {
        this.log.error({ err: e }, 'could not set TTL security on an incoming connection');
        socket.destroy();
        return;
      }
      const state = this.fsm.state;
      if (state === 'Established') {
        this.refuse(socket, CeaseSubcode.ConnectionCollisionResolution);
      } else if (state === 'OpenSent' || state === 'OpenConfirm') {
        this.holdCandidate(socket);
      } else if (state === 'Idle' && !this.fsm.autoRestart) {
        this.refuse(socket, CeaseSubcode.ConnectionRejected);
      } else {
        // Connect, Active, or Idle between attempts: the peer's connection wins over ours.
        this.conn?.destroy();
        this.conn = this.wrap(socket, 'remote');
        this.feed({ type: 'TcpConnectionConfirmed' });
      }
    });
  }

  private refuse(socket: net.Socket, subcode: number): void {
    socket.on('error', () => undefined);
    socket.end(encodeMessage(cease(subcode)));
    setTimeout(() => socket.destroy(), 1000).unref();
    this.log.info({ subcode }, 'refused an incoming connection');
  }

  private wrap(socket: net.Socket, initiator: 'local' | 'remote'): Connection {
    return new Connection(socket, initiator, {
      connected: (c) => {
        if (c !== this.conn) return;
        try {
          // Again, for a connect function that did not set them before the SYN.
          applySocketTtls(c.socket, this.ttls);
        } catch (e) {
          this.feed({
            type: 'TcpConnectionFails',
            reason: `cannot set the TTLs: ${(e as Error).message}`,
          });
          return;
        }
        this.feed({ type: 'Tcp_CR_Acked' });
      },
      frames: (c, frames) => this.onFrames(c, frames),
      failed: (c, reason) => {
        if (c === this.conn) this.feed({ type: 'TcpConnectionFails', reason });
        else if (c === this.candidate?.conn) this.dropCandidate();
      },
    });
  }

  // ------------------------------------------------------------ the FSM loop

  /** Runs an event through the FSM; events raised while acting are queued, not nested. */
  private feed(e: FsmEvent): void {
    this.queue.push(e);
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length > 0) {
        const next = this.queue.shift()!;
        this.guard(() => this.apply(next), next);
      }
    } finally {
      this.busy = false;
    }
  }

  /**
   * The session's edge: a bug must not escape into node:net or the caller.
   * It is counted and logged, and the connection is reset (unless resetting
   * is what failed).
   */
  private guard(fn: () => void, during?: FsmEvent): void {
    try {
      fn();
    } catch (e) {
      this.stats.internalErrors++;
      this.log.error({ err: e }, 'internal error in the BGP session; resetting the connection');
      if (this.fsm.state !== 'Idle' && during?.type !== 'AutomaticStop') {
        const reset: FsmEvent = {
          type: 'AutomaticStop',
          notification: cease(CeaseSubcode.Unspecific),
        };
        // Inside the FSM loop the reset is queued; outside it, it runs now.
        if (this.busy) this.queue.push(reset);
        else this.feed(reset);
      }
    }
  }

  /** Emits an event; a listener that throws is logged, not allowed to reset the session. */
  private tell<K extends keyof SessionEvents>(event: K, ...args: SessionEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: SessionEvents[K]) => boolean)(event, ...args);
    } catch (e) {
      this.stats.listenerErrors++;
      this.log.error(
        { err: e, event },
        'a listener of the BGP session threw; the session carries on',
      );
    }
  }

  private apply(e: FsmEvent): void {
    const from = this.fsm.state;
    const errorBefore = this.fsm.lastError;
    const r = step(this.fsm, e, this.config);
    this.fsm = r.state;
    const told = this.timerReason?.event === e.type ? this.timerReason.reason : undefined;
    this.timerReason = undefined;
    if (told !== undefined) this.lastFailure = told;
    else if (this.fsm.lastError !== errorBefore) this.lastFailure = this.fsm.lastError;
    for (const a of r.actions) {
      switch (a.type) {
        case 'connect':
          this.openConnection();
          break;
        case 'disconnect':
          this.conn?.close();
          this.conn = undefined;
          break;
        case 'send':
          this.send(a.message);
          break;
        case 'startTimer':
          this.startTimer(a.timer, a.ms);
          break;
        case 'stopTimer':
          this.stopTimer(a.timer);
          break;
        case 'established':
          this.onEstablished(a.peer);
          break;
        case 'deliver':
          this.tell('update', a.update);
          break;
        case 'refresh':
          this.onRefresh(a.afi, a.safi);
          break;
        case 'releaseRoutes':
          this.negotiated = undefined;
          this.rib.reset();
          this.tell('peerRoutesReleased');
          break;
      }
    }
    const to = this.fsm.state;
    if (to !== from) {
      if (to === 'Idle' || to === 'Active' || to === 'Connect') this.dropCandidate();
      const reason = to === 'Idle' || to === 'Active' ? this.lastFailure : undefined;
      this.log.info({ from, to, reason }, `BGP session ${from} -> ${to}`);
      this.tell('state', to, from, reason);
    }
  }

  private openConnection(): void {
    this.conn?.destroy();
    this.conn = undefined;
    let socket: net.Socket;
    try {
      socket = this.connectFn({
        host: this.options.peerAddress,
        port: this.options.peerPort ?? BGP_PORT,
        ...(this.options.localAddress === undefined
          ? {}
          : { localAddress: this.options.localAddress }),
        ...(this.options.md5Password === undefined
          ? {}
          : { md5Password: this.options.md5Password }),
        ...this.ttls,
      });
    } catch (e) {
      // A socket that cannot even be made (bad local address, a key the kernel refuses)
      // is a failed attempt like any other: back off and retry.
      this.queue.push({ type: 'TcpConnectionFails', reason: (e as Error).message });
      return;
    }
    this.conn = this.wrap(socket, 'local');
  }

  private startTimer(timer: TimerName, ms: number): void {
    this.stopTimer(timer);
    const handle = setTimeout(() => {
      this.timers.delete(timer);
      this.explainExpiry(timer, ms);
      this.feed({ type: TIMER_EVENTS[timer] } as FsmEvent);
    }, ms);
    this.timers.set(timer, handle);
  }

  /**
   * A connection attempt, or the wait for the peer's OPEN, timed out. With
   * MD5 or GTSM on, the kernel drops what fails them without a word, so the
   * likely cause is named here.
   */
  private explainExpiry(timer: TimerName, ms: number): void {
    const hint = unansweredHint(this.options);
    const suffix = hint ? ` (${hint})` : '';
    let reason: string;
    if (timer === 'connectRetry' && this.fsm.state === 'Connect') {
      reason = `TCP connection to ${this.options.peerAddress} not answered within ${ms} ms`;
    } else if (timer === 'hold' && this.fsm.state === 'OpenSent') {
      reason = `no OPEN from ${this.options.peerAddress} within ${ms} ms of connecting`;
    } else if (timer === 'hold' && this.fsm.state === 'OpenConfirm') {
      reason = `no KEEPALIVE from ${this.options.peerAddress} within ${ms} ms of its OPEN`;
    } else {
      return;
    }
    this.timerReason = { event: TIMER_EVENTS[timer], reason: reason + suffix };
    this.log.warn(reason + suffix);
  }

  private stopTimer(timer: TimerName): void {
    const handle = this.timers.get(timer);
    if (handle !== undefined) clearTimeout(handle);
    this.timers.delete(timer);
  }

  private send(m: BgpMessage, conn: Connection | undefined = this.conn): void {
    if (conn === undefined) return;
    const bytes = encodeMessage(m, this.negotiated?.ctx);
    // A closed connection takes nothing: count and report only what went out.
    if (!conn.send(bytes)) return;
    this.stats.messagesSent++;
    if (m.type === 'update') this.stats.updatesSent++;
    if (m.type === 'notification') {
      this.stats.notificationsSent++;
      this.reportNotification('sent', m);
    }
  }

  private reportNotification(direction: 'sent' | 'received', m: NotificationMessage): void {
    const said = shutdownMessage(m);
    const text = describeNotification(m.code, m.subcode) + (said ? `: "${said}"` : '');
    const level = m.code === ErrorCode.Cease ? 'info' : 'warn';
    this.log[level](
      { direction, code: m.code, subcode: m.subcode, data: m.data.toString('hex') },
      `NOTIFICATION ${direction}: ${text}`,
    );
    this.tell('notification', { direction, code: m.code, subcode: m.subcode, data: m.data, text });
  }

  // ------------------------------------------------------------ receiving

  private onFrames(c: Connection, frames: Frame[]): void {
    for (const f of frames) {
      if (c === this.candidate?.conn) {
        this.candidateFrame(f);
        continue;
      }
      if (c !== this.conn) return; // let go of while this chunk was being read
      this.guard(() => this.feed(this.eventFor(f)));
    }
  }

  /** Turns a frame into the FSM event RFC 4271 section 8.1 names for it. */
  private eventFor(f: Frame): FsmEvent {
    if (!f.ok) return { type: 'BGPHeaderErr', error: f.error };
    this.stats.messagesReceived++;
    const d = decodeMessage(f.bytes, this.negotiated?.ctx);
    if (!d.ok) {
      const code = d.error.notification.code;
      if (code === ErrorCode.MessageHeader) return { type: 'BGPHeaderErr', error: d.error };
      if (f.header.type === MessageType.Open) return { type: 'BGPOpenMsgErr', error: d.error };
      return { type: 'UpdateMsgErr', error: d.error };
    }
    const m = d.value;
    switch (m.type) {
      case 'open': {
        const v = this.checkOpen(m);
        return v.ok ? { type: 'BGPOpen', open: m } : { type: 'BGPOpenMsgErr', error: v.error };
      }
      case 'keepalive':
        return { type: 'KeepAliveMsg' };
      case 'notification':
        this.stats.notificationsReceived++;
        this.reportNotification('received', m);
        return m.code === ErrorCode.Open && m.subcode === OpenSubcode.UnsupportedVersionNumber
          ? { type: 'NotifMsgVerErr', notification: m }
          : { type: 'NotifMsg', notification: m };
      case 'update': {
        this.stats.updatesReceived++;
        const v = checkReceivedUpdate(m, {
          external: !this.internal,
          peerAs: this.options.peerAs,
          enforceFirstAs: this.options.enforceFirstAs ?? true,
        });
        return v.ok ? { type: 'UpdateMsg', update: m } : { type: 'UpdateMsgErr', error: v.error };
      }
      case 'routeRefresh':
        return { type: 'RouteRefreshMsg', message: m };
    }
  }

  private checkOpen(m: OpenMessage) {
    return validateOpen(m, {
      peerAs: this.options.peerAs,
      localAs: this.options.localAs,
      localBgpId: this.options.routerId,
      minHoldTime: this.options.minHoldTime ?? 3,
    });
  }

  // ------------------------------------------------------------ collisions

  private holdCandidate(socket: net.Socket): void {
    this.dropCandidate(CeaseSubcode.ConnectionCollisionResolution);
    const conn = this.wrap(socket, 'remote');
    const timer = setTimeout(() => this.dropCandidate(), this.config.openHoldMs);
    this.candidate = { conn, timer };
    this.send(this.config.open, conn);
    this.log.info('second connection from the peer: holding it until its OPEN (collision)');
  }

  private dropCandidate(subcode?: number): void {
    const c = this.candidate;
    if (c === undefined) return;
    this.candidate = undefined;
    clearTimeout(c.timer);
    if (subcode !== undefined) {
      this.send(cease(subcode), c.conn);
    }
    c.conn.close();
  }

  /** The candidate's first message decides: its OPEN goes to collision resolution. */
  private candidateFrame(f: Frame): void {
    const c = this.candidate!;
    const d = f.ok ? decodeMessage(f.bytes) : f;
    if (!d.ok) {
      this.send({ type: 'notification', ...d.error.notification }, c.conn);
      this.dropCandidate();
      return;
    }
    if (d.value.type !== 'open') {
      this.dropCandidate(d.value.type === 'notification' ? undefined : CeaseSubcode.Unspecific);
      return;
    }
    const open = d.value;
    const v = this.checkOpen(open);
    if (!v.ok) {
      this.send({ type: 'notification', ...v.error.notification }, c.conn);
      this.dropCandidate();
      return;
    }
    const winner = collisionWinner({
      localId: this.options.routerId,
      localAs: this.options.localAs,
      remoteId: open.bgpId,
      remoteAs: asnOf(open),
      existing: this.conn?.initiator ?? 'local',
    });
    this.log.info({ winner }, 'connection collision resolved');
    if (winner === 'existing' || this.conn === undefined) {
      this.dropCandidate(CeaseSubcode.ConnectionCollisionResolution);
      return;
    }
    // The newcomer wins: Cease on the old connection, carry on with the new one.
    const old = this.conn;
    this.send(cease(CeaseSubcode.ConnectionCollisionResolution), old);
    old.close();
    clearTimeout(c.timer);
    this.candidate = undefined;
    this.conn = c.conn;
    this.feed({ type: 'CollisionWinner', open });
  }

  // ------------------------------------------------------------ announcing

  private onEstablished(peer: OpenMessage): void {
    this.dropCandidate(CeaseSubcode.ConnectionCollisionResolution);
    const caps = capabilitiesOf(peer);
    const offered = caps.filter((c) => c.kind === 'multiprotocol');
    // RFC 4760: a peer that offers no multiprotocol capability speaks IPv4 unicast only.
    const peerFamilies = new Set<Family>(
      offered.length === 0
        ? ['ipv4']
        : offered.flatMap((c) => {
            const f = c.kind === 'multiprotocol' ? familyOf(c.afi, c.safi) : undefined;
            return f === undefined ? [] : [f];
          }),
    );
    const families = new Set(this.families.filter((f) => peerFamilies.has(f)));
    const fourOctetAs = caps.some((c) => c.kind === 'fourOctetAs');
    const local = unmapped(this.conn?.localAddress);
    const nextHops: NextHops = { ...this.options.nextHops };
    if (local !== undefined) {
      const fam = local.includes(':') ? 'ipv6' : 'ipv4';
      nextHops[fam] ??= local;
    }
    this.negotiated = { families, ctx: { fourOctetAs }, nextHops };
    this.log.info(
      { families: [...families], fourOctetAs, holdTime: this.fsm.holdTime },
      'BGP session established',
    );
    this.tell('established', peer);
    this.rib.reset();
    this.sendRoutes(this.rib.routes(), families);
    this.afterFirstOpen();
    if (!this.endOfRibHeld) {
      for (const f of families) this.send(endOfRib(f));
      // After a restart, the moment the peer drops our stale routes.
      this.log[this.options.gracefulRestart?.restarting ? 'info' : 'debug'](
        { families: [...families] },
        'End-of-RIB sent',
      );
    } else if (this.endOfRibTimer === undefined) {
      // The peer keeps our stale routes only so long; do not hold it up beyond that.
      const ms = this.options.gracefulRestart!.restartTimeSeconds * 1000;
      this.endOfRibTimer = setTimeout(() => {
        this.endOfRibTimer = undefined;
        this.log.warn('ribComplete() not called within the restart time: sending End-of-RIB');
        this.ribComplete();
      }, ms);
      this.log.info('restarted: End-of-RIB waits for ribComplete()');
    }
  }

  /**
   * Only the first OPEN after a restart carries the Restart State bit. From
   * then on the datapath forwards what this process announced, so a later
   * reconnection preserved forwarding whatever the restart did.
   */
  private afterFirstOpen(): void {
    const gr = this.options.gracefulRestart;
    if (!gr?.restarting) return;
    const capabilities = capabilitiesOf(this.config.open).map((c) =>
      c.kind === 'gracefulRestart' ? this.gracefulRestartCapability(false, true) : c,
    );
    const open: OpenMessage = {
      ...this.config.open,
      parameters: [{ kind: 'capabilities', capabilities }],
    };
    this.config = { ...this.config, open };
  }

  private onRefresh(afi: number, safi: number): void {
    const family = familyOf(afi, safi);
    if (family === undefined || !this.negotiated?.families.has(family)) {
      this.log.info({ afi, safi }, 'ignored ROUTE-REFRESH for a family not negotiated');
      return;
    }
    this.sendRoutes(this.rib.routes(family), new Set([family]));
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // One flush per turn of the event loop: a burst of announce() calls packs into few UPDATEs.
    setImmediate(() => {
      this.flushScheduled = false;
      this.guard(() => this.flush());
    });
  }

  private flush(): void {
    if (this.fsm.state !== 'Established' || this.negotiated === undefined) return;
    const { announce, withdraw } = this.rib.takeChanges();
    this.sendRoutes(announce, this.negotiated.families);
    for (const u of buildWithdrawals(withdraw)) this.send(u);
  }

  /** Announces routes of the families given, those with equal attributes packed together. */
  private sendRoutes(routes: NormalizedRoute[], families: Set<Family>): void {
    const n = this.negotiated;
    if (n === undefined) return;
    const sendable = routes.filter((r) => {
      const family = parsePrefix(r.prefix).family;
      if (!families.has(family)) return false;
      if (n.nextHops[family] !== undefined) return true;
      this.log.warn(
        { prefix: r.prefix },
        `no ${family} next hop for this session: route not announced (set nextHops.${family})`,
      );
      return false;
    });
    const ctx = {
      localAs: this.options.localAs,
      internal: this.internal,
      fourOctetAs: n.ctx.fourOctetAs,
    };
    for (const group of groupByAttributes(sendable)) {
      const attrs = exportAttributes(group[0]!.attributes, ctx);
      const prefixes = group.map((r) => r.prefix);
      for (const u of buildAnnouncements(prefixes, attrs, n.nextHops, n.ctx)) this.send(u);
      this.rib.markAdvertised(prefixes);
    }
  }
}
