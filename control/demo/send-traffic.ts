// Runs inside a network namespace (via `ip netns exec`) and sends a fixed
// amount of real UDP and TCP traffic, then exits. Kept as its own small
// program because a socket belongs to the namespace of the thread that makes
// it, and Node makes sockets on its own schedule.
//
//   node send-traffic.js udp 192.0.2.2 9 20
//   node send-traffic.js tcp 2001:db8::2 9 5
import dgram from 'node:dgram';
import net from 'node:net';

async function udp(host: string, port: number, count: number): Promise<void> {
  const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) =>
      socket.send(Buffer.from(`xlb datagram ${i}`), port, host, (e) => (e ? reject(e) : resolve())),
    );
  }
  socket.close();
}

/** Connection attempts; a refused one (RST) is as good as an accepted one here. */
async function tcp(host: string, port: number, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve) => {
      const s = net.connect({ host, port, timeout: 2000 });
      const done = (): void => {
        s.destroy();
        resolve();
      };
      s.on('connect', done).on('error', done).on('timeout', done);
    });
  }
}

const [kind, host, portText, countText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
if ((kind !== 'udp' && kind !== 'tcp') || !host || !net.isIP(host) || !(port > 0) || !(count > 0)) {
  process.stderr.write('usage: send-traffic (udp|tcp) ADDRESS PORT COUNT\n');
  process.exit(2);
}
await (kind === 'udp' ? udp(host, port, count) : tcp(host, port, count));
