// The passive side of BGP: one TCP listener (port 179 by default) for all
// sessions of a node, handing each accepted connection to the session of
// the peer it comes from. Connections from unknown addresses are closed.
import net from 'node:net';

import { logger, type Logger } from '../observe/log.js';
import { BGP_PORT, type BgpSession } from './session.js';
import { parsePrefix } from './codec/prefix.js';

export interface ListenerOptions {
  /** Address to listen on; default all (IPv4 and IPv6). */
  host?: string;
  port?: number;
  /** A server made elsewhere (e.g. inside another network namespace), listening already. */
  server?: net.Server;
  log?: Logger;
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

  add(session: BgpSession): void {
    const key = addressKey(session.options.peerAddress);
    if (key === undefined)
      throw new RangeError(`'${session.options.peerAddress}' is not an address`);
    this.sessions.set(key, session);
  }

  remove(session: BgpSession): void {
    const key = addressKey(session.options.peerAddress);
    if (key !== undefined && this.sessions.get(key) === session) this.sessions.delete(key);
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
