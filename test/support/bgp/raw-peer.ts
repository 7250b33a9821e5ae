// One end of a BGP connection driven by hand: records every message the
// other end sends (as bytes and decoded) and sends whatever the test says,
// well-formed or not. It records real peers' messages for the fixtures and
// feeds xlb's session the malformed input it must survive.
import type net from 'node:net';

import {
  decodeMessage,
  encodeMessage,
  type BgpMessage,
} from '../../../control/bgp/codec/message.js';
import { MessageFramer } from '../../../control/bgp/framer.js';
import { until } from '../../../control/topology/agent-harness.js';

export class RawPeer {
  /** Every whole message received, as bytes. */
  readonly received: Buffer[] = [];
  /** Raw bytes after a framing error (there should be none). */
  framingError: string | undefined;
  closed = false;
  private readonly framer = new MessageFramer();

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.framer.push(chunk)) {
        if (f.ok) this.received.push(f.bytes);
        else this.framingError = f.error.message;
      }
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => (this.closed = true));
  }

  /** Waits for the first connection to server. */
  static accept(server: net.Server, timeoutMs = 10_000): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        server.off('connection', onConnection);
        reject(new Error(`nobody connected within ${timeoutMs} ms`));
      }, timeoutMs);
      const onConnection = (socket: net.Socket) => {
        clearTimeout(timer);
        resolve(new RawPeer(socket));
      };
      server.once('connection', onConnection);
    });
  }

  messages(): BgpMessage[] {
    return this.received.map((b) => {
      const d = decodeMessage(b);
      if (!d.ok) throw new Error(`peer sent a message xlb cannot decode: ${d.error.message}`);
      return d.value;
    });
  }

  send(m: BgpMessage | Buffer): void {
    this.socket.write(Buffer.isBuffer(m) ? m : encodeMessage(m));
  }

  /** Waits until at least count messages match, returns all that do. */
  async waitFor(
    what: string,
    match: (m: BgpMessage) => boolean,
    count = 1,
    timeoutMs = 10_000,
  ): Promise<BgpMessage[]> {
    return until(
      () =>
        `${what} (received so far: ${this.messages()
          .map((m) => m.type)
          .join(', ')})`,
      () => {
        const found = this.messages().filter(match);
        return found.length >= count ? found : undefined;
      },
      timeoutMs,
    );
  }

  async waitClosed(timeoutMs = 10_000): Promise<void> {
    await until('the connection to close', () => this.closed, timeoutMs);
  }

  close(): void {
    this.socket.destroy();
  }
}
