// The client side: runs inside a network namespace (ip netns exec) and
// speaks to a VIP, printing one JSON line per answer:
//
//   node probe.js http URL                 one HTTP GET; prints the body
//   node probe.js burst URL COUNT          COUNT GETs one after another, each
//                                          on a new connection; one line each
//                                          (the answer, or {"error":...})
//   node probe.js udp HOST PORT TEXT       one datagram; prints the answer
//                                          with the address it came from
//   node probe.js session HOST PORT        a long-lived TCP connection: each
//                                          line on stdin is sent, each answer
//                                          printed; prints {"connected":...}
//                                          first, {"closed":...} at the end
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import readline from 'node:readline';

const TIMEOUT_MS = 5000;

function fail(message: string): never {
  process.stdout.write(`${JSON.stringify({ error: message })}\n`);
  process.exit(1);
}

function httpGet(url: string): void {
  const req = http.get(url, { timeout: TIMEOUT_MS, agent: false }, (res) => {
    let body = '';
    res.on('data', (d: Buffer) => (body += d.toString()));
    res.on('end', () =>
      process.stdout.write(
        `${JSON.stringify({ status: res.statusCode, remote: res.socket.remoteAddress, body: JSON.parse(body) as unknown })}\n`,
      ),
    );
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => fail(e.message));
}

/** One GET on a new connection; resolves with the JSON line to print, never rejects. */
function getOnce(url: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        try {
          resolve(
            JSON.stringify({
              status: res.statusCode,
              remote: res.socket.remoteAddress,
              body: JSON.parse(body) as unknown,
            }),
          );
        } catch (e) {
          resolve(JSON.stringify({ error: `unreadable answer: ${(e as Error).message}` }));
        }
      });
      res.on('error', (e) => resolve(JSON.stringify({ error: e.message })));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(JSON.stringify({ error: e.message })));
  });
}

// A failed request must not hold a whole burst up for long.
const BURST_TIMEOUT_MS = 2000;

async function burst(url: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) process.stdout.write(`${await getOnce(url, BURST_TIMEOUT_MS)}\n`);
}

function udp(host: string, port: number, text: string): void {
  const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  const timer = setTimeout(() => fail('timeout'), TIMEOUT_MS);
  socket.on('message', (msg, rinfo) => {
    clearTimeout(timer);
    process.stdout.write(
      `${JSON.stringify({ from: rinfo.address, fromPort: rinfo.port, body: JSON.parse(msg.toString()) as unknown })}\n`,
    );
    socket.close();
  });
  socket.send(text, port, host, (e) => e && fail(e.message));
}

function session(host: string, port: number): void {
  const socket = net.connect({ host, port, timeout: TIMEOUT_MS });
  socket.on('connect', () => {
    socket.setTimeout(0);
    process.stdout.write(`${JSON.stringify({ connected: true, localPort: socket.localPort })}\n`);
    readline
      .createInterface({ input: process.stdin })
      .on('line', (line) => socket.write(`${line}\n`));
    process.stdin.on('end', () => socket.end());
  });
  readline
    .createInterface({ input: socket })
    .on('line', (line) => process.stdout.write(`${line}\n`));
  socket.on('timeout', () => fail('timeout'));
  socket.on('error', (e) => fail(e.message));
  socket.on('close', () => process.stdout.write(`${JSON.stringify({ closed: true })}\n`));
}

const [mode, a, b, c] = process.argv.slice(2);
if (mode === 'http' && a) httpGet(a);
else if (mode === 'burst' && a && Number(b) > 0) void burst(a, Number(b));
else if (mode === 'udp' && a && Number(b)) udp(a, Number(b), c ?? 'ping');
else if (mode === 'session' && a && Number(b)) session(a, Number(b));
else fail('usage: probe http URL | burst URL COUNT | udp HOST PORT [TEXT] | session HOST PORT');
