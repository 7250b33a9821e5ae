// BFD detection time of a dead node at 300 ms x 3: two xlb BFD sessions on
// loopback addresses come Up, one falls silent (as a dead node would), and
// the time until the other declares the session down is measured. The same
// measurement as bench/bfd.ts, repeated as often as the BGP benchmark asks.
import { performance } from 'node:perf_hooks';

import { pino } from 'pino';

import { BfdEndpoint, BfdState } from '../../control/bgp/bfd/index.js';

const log = pino({ level: 'silent' });

function waitUp(check: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const poll = setInterval(() => {
      if (check()) {
        clearInterval(poll);
        resolve();
      } else if (Date.now() > deadline) {
        clearInterval(poll);
        reject(new Error(`BFD sessions did not come Up within ${timeoutMs} ms`));
      }
    }, 5);
  });
}

/** One detection: ms from the peer falling silent to 'down'. */
export async function detectDeadPeer(): Promise<number> {
  const a = new BfdEndpoint({ localAddress: '127.0.0.1', port: 0, log });
  const b = new BfdEndpoint({ localAddress: '127.0.0.2', port: 0, log });
  try {
    const sa = a.session({ peerAddress: '127.0.0.2', peerPort: b.port });
    const sb = b.session({ peerAddress: '127.0.0.1', peerPort: a.port });
    // Up at the slow start rate is not enough: wait for the 300 ms timers.
    await waitUp(
      () => sa.state === BfdState.Up && sa.variables.remoteDesiredMinTxUs === 300_000,
      10_000,
    );
    const down = new Promise<number>((resolve) =>
      sa.once('down', () => resolve(performance.now())),
    );
    const silent = performance.now();
    sb.close({ notifyPeer: false });
    return (await down) - silent;
  } finally {
    a.close();
    b.close();
  }
}
