// One TCP connection of a BGP session: a socket, the framer cutting its
// bytes into messages, and a way to close it that lets a last NOTIFICATION
// reach the peer. Events from a connection the session has let go of are
// not passed on, so a late 'close' cannot disturb the connection after it.
import type net from 'node:net';

import type { Initiator } from './collision.js';
import { type Frame, MessageFramer } from './framer.js';

export interface ConnectionHandlers {
  connected(c: Connection): void;
  frames(c: Connection, frames: Frame[]): void;
  failed(c: Connection, reason: string): void;
}

/** How long a closing connection may take to flush before it is cut. */
const CLOSE_GRACE_MS = 1000;

export class Connection {
  private readonly framer = new MessageFramer();
  private detached = false;
  private failedOnce = false;
  readonly closed: Promise<void>;

  constructor(
    readonly socket: net.Socket,
    readonly initiator: Initiator,
    private readonly handlers: ConnectionHandlers,
  ) {
    socket.setNoDelay(true);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('connect', () => {
      if (!this.detached) handlers.connected(this);
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.detached) return;
      const frames = this.framer.push(chunk);
      if (frames.length > 0) handlers.frames(this, frames);
    });
    socket.on('error', (e: Error) => this.fail(e.message));
    socket.on('close', () => this.fail('closed by the peer'));
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }

  private fail(reason: string): void {
    if (this.detached || this.failedOnce) return;
    this.failedOnce = true;
    this.handlers.failed(this, reason);
  }

  /** Queues bytes on the socket; false when it is already closed and nothing went out. */
  send(bytes: Buffer): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    this.socket.write(bytes);
    return true;
  }

  /** Stops passing events on, flushes what was written, then closes. */
  close(): void {
    this.detached = true;
    if (this.socket.destroyed) return;
    // Nothing to flush on a connection still being made.
    if (this.socket.connecting) {
      this.socket.destroy();
      return;
    }
    this.socket.end();
    const timer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    this.socket.once('close', () => clearTimeout(timer));
  }

  /** Stops passing events on and cuts the connection at once. */
  destroy(): void {
    this.detached = true;
    this.socket.destroy();
  }
}
