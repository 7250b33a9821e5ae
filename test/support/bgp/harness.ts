// Helpers for tests that run xlb's BGP session over real sockets: a log
// that records instead of printing, event recording, raw peers on loopback
// addresses, and a cleanup list that undoes everything, also after a failure.
import net from 'node:net';
import { Writable } from 'node:stream';

import { pino } from 'pino';

import { Afi, Safi } from '../../../control/bgp/codec/capabilities.js';
import { KEEPALIVE } from '../../../control/bgp/codec/message.js';
import { buildOpen, type OpenMessage } from '../../../control/bgp/codec/open.js';
import type { UpdateMessage } from '../../../control/bgp/codec/update.js';
import type { State } from '../../../control/bgp/fsm.js';
import type { BgpSession, NotificationEvent } from '../../../control/bgp/session.js';
import { until } from '../../../control/topology/agent-harness.js';
import { RawPeer } from './raw-peer.js';

/** A pino logger that keeps its lines (for failure messages) instead of printing them. */
export function recordingLog(): { log: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString().trim());
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

/** Timings short enough for tests. */
export const FAST = {
  connectRetryMs: 1000,
  openHoldMs: 3000,
  backoff: { initialMs: 20, maxMs: 200, multiplier: 2, jitter: 0 },
  stableMs: 60_000,
} as const;

export class Recorder {
  readonly states: { to: State; from: State; reason: string | undefined; at: number }[] = [];
  readonly updates: UpdateMessage[] = [];
  readonly notifications: NotificationEvent[] = [];
  released = 0;

  constructor(readonly session: BgpSession) {
    session.on('state', (to, from, reason) =>
      this.states.push({ to, from, reason, at: Date.now() }),
    );
    session.on('update', (u) => this.updates.push(u));
    session.on('notification', (n) => this.notifications.push(n));
    session.on('peerRoutesReleased', () => this.released++);
  }

  async waitState(state: State, timeoutMs = 10_000): Promise<void> {
    await until(
      () =>
        `session to be ${state} (is ${this.session.state}; states: ${this.states.map((s) => s.to).join(' ')}; last error: ${this.session.lastError})`,
      () => this.session.state === state,
      timeoutMs,
      5,
    );
  }
}

/** Everything a test made, undone newest first; failures are collected, not thrown half-way. */
export class Cleanup {
  private readonly steps: (() => unknown)[] = [];

  add(fn: () => unknown): void {
    this.steps.push(fn);
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const fn of this.steps.reverse()) {
      try {
        await fn();
      } catch (e) {
        errors.push(e);
      }
    }
    this.steps.length = 0;
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  }
}

/** A server on a loopback address whose connections become RawPeers. */
export class RawServer {
  readonly peers: RawPeer[] = [];
  private taken = 0;
  private waiting: (() => void)[] = [];

  private constructor(
    readonly server: net.Server,
    readonly host: string,
  ) {
    server.on('connection', (s) => {
      this.peers.push(new RawPeer(s));
      this.waiting.shift()?.();
    });
  }

  static async start(host: string, cleanup: Cleanup): Promise<RawServer> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    const raw = new RawServer(server, host);
    cleanup.add(async () => {
      for (const p of raw.peers) p.close();
      await new Promise((resolve) => server.close(resolve));
    });
    return raw;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The next connection (or one already made and not yet taken). */
  next(timeoutMs = 10_000): Promise<RawPeer> {
    if (this.peers.length > this.taken) return Promise.resolve(this.peers[this.taken++]!);
    return new Promise((resolve, reject) => {
      const waiter = () => {
        clearTimeout(timer);
        resolve(this.peers[this.taken++]!);
      };
      const timer = setTimeout(() => {
        this.waiting = this.waiting.filter((w) => w !== waiter);
        reject(new Error(`no connection to ${this.host} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.push(waiter);
    });
  }
}

export function peerOpen(
  over: Partial<{ asn: number; holdTime: number; bgpId: string }> = {},
): OpenMessage {
  return buildOpen({
    asn: over.asn ?? 65001,
    holdTime: over.holdTime ?? 90,
    bgpId: over.bgpId ?? '198.51.100.1',
    capabilities: [
      { kind: 'multiprotocol', afi: Afi.Ipv4, safi: Safi.Unicast },
      { kind: 'multiprotocol', afi: Afi.Ipv6, safi: Safi.Unicast },
      { kind: 'routeRefresh' },
    ],
  });
}

/** Plays the peer's part up to Established: waits for OPEN, answers OPEN and KEEPALIVE. */
export async function handshake(peer: RawPeer, open: OpenMessage = peerOpen()): Promise<void> {
  await peer.waitFor('the session OPEN', (m) => m.type === 'open');
  peer.send(open);
  peer.send(KEEPALIVE);
  await peer.waitFor('the session KEEPALIVE', (m) => m.type === 'keepalive');
}
