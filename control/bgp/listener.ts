// The passive side of BGP: one TCP listener (port 179 by default) for all
// sessions of a node, handing each accepted connection to the session of
// the peer it comes from. Connections from unknown addresses are closed.
// A session's TCP MD5 password is put on the listening socket, because the
// kernel checks the peer's SYN before any connection exists to set it on.
import net from 'node:net';

import { logger, type Logger } from '../observe/log.js';
import { BGP_PORT, type BgpSession } from './session.js';
import { parsePrefix } from './codec/prefix.js';
import { applyServerMinTtl, GTSM_TTL, setListenerMd5 } from './transport.js';

export interface ListenerOptions {
  /** Address to listen on; default all (IPv4 and IPv6). */
  host?: string;
  port?: number;
  /** A server made elsewhere (e.g. inside another network namespace), listening already. */
  server?: net.Server;
  log?: Logger;
  /**
   * Every peer of this listener uses GTSM (RFC 5082): the listening socket
   * itself drops SYNs below TTL 255. Without it, a session's ttlSecurity
   * takes effect once its connection is accepted, so a farther peer can get
   * through the TCP handshake (never to Established).
   */
  ttlSecurity?: boolean;
}

function addressKey(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const plain = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  try {
    return parsePrefix(plain).bytes.toString('hex');
  } catch {
    return undefined;
  }
}

export class BgpListener {
  readonly server: net.Server;
  private readonly sessions = new Map<string, BgpSession>();
  private readonly log: Logger;
  private readonly ownServer: boolean;

  constructor(private readonly options: ListenerOptions = {}) {
    this.log = options.log ?? logger('bgp');
    this.ownServer = options.server === undefined;
    this.server = options.server ?? net.createServer();
    this.server.on('connection', (socket) => this.dispatch(socket));
    this.server.on('error', (e) => this.log.error({ err: e }, 'BGP listener error'));
    if (this.server.listening) this.secure();
  }

  /** What goes on the listening socket itself once it exists. */
  private secure(): void {
    if (this.options.ttlSecurity) applyServerMinTtl(this.server, GTSM_TTL);
    for (const s of this.sessions.values()) {
      if (s.options.md5Password !== undefined) {
        this.setMd5(s.options.peerAddress, s.options.md5Password);
      }
    }
  }

  /** Starts listening (not needed with a server passed in). Rejects if the port cannot be bound. */
  listen(): Promise<void> {
    if (this.server.listening) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      this.server.once('error', onError);
      this.server.listen(
        {
          port: this.options.port ?? BGP_PORT,
          ...(this.options.host ? { host: this.options.host } : {}),
        },
        () => {
          this.server.off('error', onError);
          try {
            this.secure();
          } catch (e) {
            this.server.close();
            reject(e instanceof Error ? e : new Error(String(e)));
            return;
          }
          resolve();
        },
      );
    });
  }

  /** The port actually bound (useful with port 0). */
  get port(): number | undefined {
    const a = this.server.address();
    return typeof a === 'object' && a !== null ? a.port : undefined;
  }

  /**
   * Hands connections from the session's peer to it. Throws if the peer is
   * not an address, or if the kernel refuses its MD5 password on the
   * listening socket (set now, or by listen() if not listening yet).
   */
  add(session: BgpSession): void {
    const peer = session.options.peerAddress;
    const key = addressKey(peer);
    if (key === undefined) throw new RangeError(`'${peer}' is not an address`);
    const previous = this.sessions.get(key)?.options.md5Password;
    const password = session.options.md5Password;
    if (this.server.listening && (password !== undefined || previous !== undefined)) {
      this.setMd5(peer, password);
    }
    this.sessions.set(key, session);
  }

  private setMd5(peer: string, password: string | undefined): void {
    try {
      setListenerMd5(this.server, this.keyAddress(peer), password);
    } catch (e) {
      const what = password === undefined ? 'remove' : 'set';
      throw new Error(
        `cannot ${what} the TCP MD5 password for ${peer} on the BGP listener: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }

  remove(session: BgpSession): void {
    const key = addressKey(session.options.peerAddress);
    if (key === undefined || this.sessions.get(key) !== session) return;
    this.sessions.delete(key);
    if (session.options.md5Password === undefined) return;
    if (!this.server.listening) return;
    try {
      this.setMd5(session.options.peerAddress, undefined);
    } catch (e) {
      this.log.warn(
        { err: e, peer: session.options.peerAddress },
        'could not remove the TCP MD5 key',
      );
    }
  }

  /**
   * The address a key is set for: an IPv6 (dual-stack) listening socket
   * takes an IPv4 peer's key only in its IPv4-mapped form.
   */
  private keyAddress(peer: string): string {
    const a = this.server.address();
    const dualStack = typeof a === 'object' && a !== null && a.family === 'IPv6';
    return dualStack && !peer.includes(':') ? `::ffff:${peer}` : peer;
  }

  private dispatch(socket: net.Socket): void {
    const key = addressKey(socket.remoteAddress);
    const session = key === undefined ? undefined : this.sessions.get(key);
    if (session === undefined) {
      this.log.warn({ from: socket.remoteAddress }, 'BGP connection from an unknown peer closed');
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    session.acceptConnection(socket);
  }

  /** Stops accepting (sessions keep their connections). Closes the server only if it made it. */
  async close(): Promise<void> {
    this.server.removeAllListeners('connection');
    if (!this.ownServer || !this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
