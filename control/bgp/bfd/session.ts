// BFD over UDP (RFC 5881, single hop): the only part of control/bgp/bfd that
// does I/O. A BfdEndpoint owns the receiving socket on port 3784 of one local
// address and hands each packet to its session; each BfdSession runs the pure
// FSM (fsm.ts) with its own timers and sends from its own socket, bound to a
// source port in 49152-65535, with TTL 255.
//
// The receive-side TTL check of RFC 5881 section 5 (discard packets that
// arrive with a TTL or hop limit below 255, so that nobody more than one hop
// away can reach the session) is done by the kernel: node:dgram cannot hand
// over a datagram's TTL, so the endpoint's socket gets a classic BPF socket
// filter (native minTtlFilter) that drops such packets before they are
// queued. They never reach JavaScript; the kernel counts them in the socket's
// drop count, which the endpoint reports as discarded.lowTtl. That count also
// takes in datagrams dropped for a full receive buffer (one count per socket
// in the kernel), which BFD's few packets a second do not cause in practice.
// Should the filter not attach (no native addon), the endpoint says so in a
// warning and in ttlChecked, and runs without the check. Packets are in any
// case accepted only on the endpoint's local address and only from a
// session's configured peer address.
//
// Nothing a peer sends and no network failure throws out of here: packets
// that break a rule are counted per reason and logged at debug level.
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import net from 'node:net';

import ipaddr from 'ipaddr.js';

import { BfdState, decodeControl, Diag, encodeControl, type DiscardReason } from './codec.js';
import {
  controlPacket,
  DEFAULT_TIMING,
  initialState,
  jitteredTxMs,
  periodicTxAllowed,
  step,
  type BfdAction,
  type BfdEvent,
  type BfdFsmState,
  type BfdTiming,
} from './fsm.js';
import { logger, type Logger } from '../../observe/log.js';
import {
  attachSocketFilter,
  dgramSocketFd,
  minTtlFilter,
  socketDrops,
} from '../../../native/socket.js';

/** RFC 5881 section 4: the destination port of single-hop Control packets. */
export const BFD_PORT = 3784;
/** RFC 5881 section 4: the source port range. */
export const SOURCE_PORT_MIN = 49152;
export const SOURCE_PORT_MAX = 65535;
/** RFC 5881 section 5: single-hop packets are sent with TTL 255. */
export const BFD_TTL = 255;

/**
 * Runs the synchronous creation of a socket; tests pass one that enters a
 * network namespace (`fn => inNetns(ns, fn)`), since a socket belongs to the
 * namespace it was created in.
 */
export type SocketScope = <T>(fn: () => T) => T;

export class BfdSocketError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'BfdSocketError';
  }
}

function canonical(address: string): string {
  return ipaddr.process(address).toString();
}

/**
 * Creates and binds a UDP socket synchronously (a lookup that answers at
 * once makes dgram bind before returning), so it can be made inside a
 * namespace and a bind failure is thrown here, not emitted later.
 */
function bindSocket(scope: SocketScope, address: string, port: number): dgram.Socket {
  const type = net.isIPv6(address) ? 'udp6' : 'udp4';
  return scope(() => {
    const socket = dgram.createSocket({
      type,
      lookup: (host, _options, callback) =>
        (callback as (e: null, a: string, f: number) => void)(null, host, type === 'udp6' ? 6 : 4),
    });
    let failure: Error | undefined;
    socket.once('error', (e) => (failure = e));
    socket.bind({ address, port, exclusive: true });
    if (failure !== undefined) {
      socket.close();
      const code = (failure as NodeJS.ErrnoException).code;
      throw new BfdSocketError(`cannot bind UDP ${address} port ${port}: ${failure.message}`, code);
    }
    return socket;
  });
}

export interface EndpointOptions {
  /** The local interface address sessions use (IPv4 or IPv6). */
  localAddress: string;
  /** Default BFD_PORT; tests may use another. */
  port?: number;
  scope?: SocketScope;
  log?: Logger;
}

/**
 * Why a packet to the endpoint was discarded: the codec's reasons, no session
 * for it, a session's packet from another address, and lowTtl, the kernel's
 * drops (a TTL or hop limit below 255; see the top of this file).
 */
export type EndpointDiscardReason = DiscardReason | 'noSession' | 'wrongSource' | 'lowTtl';

export interface EndpointStats {
  /** Packets that reached the endpoint (all but lowTtl). */
  received: number;
  /** Counts per reason; a reason that never happened is absent. */
  discarded: Partial<Record<EndpointDiscardReason, number>>;
}

export interface BfdSessionOptions {
  peerAddress: string;
  /** Microseconds; default 300 ms x 3. */
  timing?: Partial<BfdTiming>;
  /** The peer's BFD port; default BFD_PORT (tests may use another). */
  peerPort?: number;
  random?: () => number;
}

/** The receiving side of BFD on one local address, shared by every session on it. */
export class BfdEndpoint {
  private received = 0;
  private readonly discarded: Partial<Record<EndpointDiscardReason, number>> = {};
  private readonly sessions = new Set<BfdSession>();
  private readonly socket: dgram.Socket;
  private readonly log: Logger;
  /** The socket's descriptor while the TTL filter is on it; the kernel's drop count is read from it. */
  private filteredFd: number | undefined;
  private kernelDrops = 0;
  readonly localAddress: string;
  readonly scope: SocketScope;
  /** Whether packets that arrive with a TTL (hop limit) below 255 are dropped by the kernel. */
  readonly ttlChecked: boolean;

  constructor(options: EndpointOptions) {
    this.localAddress = canonical(options.localAddress);
    this.scope = options.scope ?? ((fn) => fn());
    this.log = options.log ?? logger('bfd');
    this.socket = bindSocket(this.scope, this.localAddress, options.port ?? BFD_PORT);
    this.socket.on('error', (e) => this.log.warn({ err: e }, 'BFD receive socket error'));
    this.socket.on('message', (msg, rinfo) => this.receive(msg, rinfo.address));
    this.filteredFd = this.attachTtlFilter();
    this.ttlChecked = this.filteredFd !== undefined;
  }

  /**
   * RFC 5881 section 5 in the kernel. Node creates the descriptor only in
   * bind(), so the filter goes on right after it, in the same tick; a packet
   * that lands in those microseconds is queued unchecked (at most a packet or
   * two at start-up, still held to the peer-address check).
   */
  private attachTtlFilter(): number | undefined {
    try {
      const fd = dgramSocketFd(this.socket);
      attachSocketFilter(fd, minTtlFilter(BFD_TTL));
      return fd;
    } catch (e) {
      this.log.warn(
        { err: e, localAddress: this.localAddress },
        'BFD runs without its received-TTL check (RFC 5881 section 5): the socket filter did not attach',
      );
      return undefined;
    }
  }

  private readKernelDrops(): void {
    if (this.filteredFd === undefined) return;
    try {
      this.kernelDrops = socketDrops(this.filteredFd);
    } catch (e) {
      this.log.debug({ err: e }, 'cannot read the BFD socket drop count');
    }
  }

  /** What the endpoint received and discarded, lowTtl read from the kernel now. */
  get stats(): EndpointStats {
    this.readKernelDrops();
    const discarded = { ...this.discarded };
    if (this.kernelDrops > 0) discarded.lowTtl = this.kernelDrops;
    return { received: this.received, discarded };
  }

  /** Starts a session with a peer on this endpoint's link. */
  session(options: BfdSessionOptions): BfdSession {
    const taken = new Set([...this.sessions].map((s) => s.localDiscr));
    const random = options.random ?? Math.random;
    let discr = 0;
    while (discr === 0 || taken.has(discr)) discr = Math.floor(random() * 0xffffffff) + 1;
    const session = new BfdSession(this, options, discr, this.log, () =>
      this.sessions.delete(session),
    );
    this.sessions.add(session);
    return session;
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Closes every session (AdminDown to their peers) and the socket. */
  close(): void {
    for (const s of [...this.sessions]) s.close();
    // The last drop count, before the descriptor goes.
    this.readKernelDrops();
    this.filteredFd = undefined;
    this.socket.close();
  }

  private count(reason: EndpointDiscardReason, detail: string, from: string): void {
    this.discarded[reason] = (this.discarded[reason] ?? 0) + 1;
    this.log.debug({ from, reason, detail }, 'BFD packet discarded');
  }

  private receive(bytes: Buffer, fromAddress: string): void {
    this.received++;
    const from = canonical(fromAddress);
    const decoded = decodeControl(bytes);
    if (!decoded.ok) return this.count(decoded.reason, decoded.detail, from);
    const p = decoded.packet;
    // Section 6.8.6: by Your Discriminator when set, else by the peer's address
    // (single hop: the session is bound to the address, RFC 5881 section 3).
    const session =
      p.yourDiscriminator !== 0
        ? [...this.sessions].find((s) => s.localDiscr === p.yourDiscriminator)
        : [...this.sessions].find((s) => s.peerAddress === from);
    if (session === undefined)
      return this.count('noSession', `no session for discriminator ${p.yourDiscriminator}`, from);
    if (session.peerAddress !== from)
      return this.count('wrongSource', `session ${session.peerAddress} got a packet`, from);
    session.handle({ type: 'received', packet: p });
  }
}

export interface BfdSessionEvents {
  state: [to: BfdState, from: BfdState, diag: Diag];
  /** The session came Up. */
  up: [];
  /**
   * The session went from Up to Down: the detection time passed without a
   * packet, or the peer said Down. The path has failed: a BGP session tied to
   * it must be reset.
   */
  down: [diag: Diag];
  /**
   * The peer took the session down administratively (RFC 5880 section
   * 6.8.16). RFC 5882 section 3.2: not a path failure, so a BGP session tied
   * to it is left alone. Our own close() emits neither this nor 'down'.
   */
  peerAdminDown: [];
}

export interface BfdSessionStats {
  sent: number;
  received: number;
  sendErrors: number;
}

/** One BFD session with a peer on the endpoint's link. Emits 'up', 'down', 'peerAdminDown' and 'state'. */
export class BfdSession extends EventEmitter<BfdSessionEvents> {
  readonly peerAddress: string;
  readonly stats: BfdSessionStats = { sent: 0, received: 0, sendErrors: 0 };
  private fsm: BfdFsmState;
  private readonly socket: dgram.Socket;
  private readonly peerPort: number;
  private readonly random: () => number;
  private txTimer: NodeJS.Timeout | undefined;
  private detectTimer: NodeJS.Timeout | undefined;
  private closed = false;

  /** Made by BfdEndpoint.session(). */
  constructor(
    endpoint: BfdEndpoint,
    options: BfdSessionOptions,
    readonly localDiscr: number,
    private readonly log: Logger,
    private readonly onClose: () => void,
  ) {
    super();
    this.peerAddress = canonical(options.peerAddress);
    if (net.isIPv6(this.peerAddress) !== net.isIPv6(endpoint.localAddress))
      throw new RangeError(
        `BFD peer ${this.peerAddress} and local address ${endpoint.localAddress} differ in family`,
      );
    this.peerPort = options.peerPort ?? BFD_PORT;
    this.random = options.random ?? Math.random;
    this.fsm = initialState(localDiscr, { ...DEFAULT_TIMING, ...options.timing });
    this.log = log.child({ peer: this.peerAddress });
    this.socket = this.bindSource(endpoint);
    this.socket.on('error', (e) => this.log.warn({ err: e }, 'BFD send socket error'));
    this.scheduleTx();
  }

  get state(): BfdState {
    return this.fsm.sessionState;
  }

  /** The FSM's variables, for status output and tests. */
  get variables(): BfdFsmState {
    return this.fsm;
  }

  /**
   * Stops the session. By default it first tells the peer AdminDown (RFC 5880
   * section 6.8.16), so the peer does not take it for a failure; with
   * { notifyPeer: false } it falls silent, as a dead node would.
   */
  close(options: { notifyPeer?: boolean } = {}): void {
    if (this.closed) return;
    if (options.notifyPeer ?? true) this.handle({ type: 'adminDown' });
    this.closed = true;
    clearTimeout(this.txTimer);
    clearTimeout(this.detectTimer);
    this.socket.close();
    this.onClose();
  }

  /** Fed by the endpoint; public for it only. */
  handle(event: BfdEvent): void {
    if (this.closed) return;
    if (event.type === 'received') this.stats.received++;
    const { state, actions } = step(this.fsm, event);
    this.fsm = state;
    for (const a of actions) this.carryOut(a);
  }

  private carryOut(a: BfdAction): void {
    switch (a.type) {
      case 'stateChange':
        this.log.info(
          { from: BfdState[a.from], to: BfdState[a.to], diag: Diag[a.diag] },
          'BFD session state changed',
        );
        this.emit('state', a.to, a.from, a.diag);
        if (a.to === BfdState.Up) this.emit('up');
        else if (a.from === BfdState.Up && a.to === BfdState.Down) {
          if (this.fsm.remoteSessionState === BfdState.AdminDown) this.emit('peerAdminDown');
          else this.emit('down', a.diag);
        }
        return;
      case 'sendNow':
        return this.send(a.final);
      case 'armDetection':
        clearTimeout(this.detectTimer);
        this.detectTimer = setTimeout(() => this.handle({ type: 'detectionTimeExpired' }), a.ms);
        return;
      case 'disarmDetection':
        clearTimeout(this.detectTimer);
        return;
      case 'txIntervalChanged':
        return this.scheduleTx();
      case 'discard':
        this.log.debug({ reason: a.reason }, 'BFD packet discarded');
        return;
    }
  }

  private scheduleTx(): void {
    clearTimeout(this.txTimer);
    if (this.closed) return;
    this.txTimer = setTimeout(
      () => {
        if (periodicTxAllowed(this.fsm)) this.send(false);
        this.scheduleTx();
      },
      jitteredTxMs(this.fsm, this.random()),
    );
  }

  private send(final: boolean): void {
    if (this.closed) return;
    const bytes = encodeControl(controlPacket(this.fsm, final));
    this.socket.send(bytes, this.peerPort, this.peerAddress, (e) => {
      // Link down, no route: the detection timers decide what that means.
      if (e) {
        this.stats.sendErrors++;
        this.log.debug({ err: e }, 'BFD send failed');
      } else this.stats.sent++;
    });
  }

  /** RFC 5881 section 4: a source port in 49152-65535, tried at random until one is free. */
  private bindSource(endpoint: BfdEndpoint): dgram.Socket {
    const span = SOURCE_PORT_MAX - SOURCE_PORT_MIN + 1;
    let last: unknown;
    for (let attempt = 0; attempt < 64; attempt++) {
      const port = SOURCE_PORT_MIN + Math.floor(this.random() * span);
      try {
        const socket = bindSocket(endpoint.scope, endpoint.localAddress, port);
        socket.setTTL(BFD_TTL);
        return socket;
      } catch (e) {
        if (!(e instanceof BfdSocketError) || e.code !== 'EADDRINUSE') throw e;
        last = e;
      }
    }
    throw new BfdSocketError(
      `no free UDP source port in ${SOURCE_PORT_MIN}-${SOURCE_PORT_MAX} on ${endpoint.localAddress}: ${String(last)}`,
      'EADDRINUSE',
    );
  }
}
