// A stand-in for a pod: runs inside a network namespace (ip netns exec) and
// answers on HTTP, on a line-oriented TCP port and on UDP with its own name
// and the client address and port it saw. That is what shows that the load
// balancer kept the client's address and where each flow went.
//
//   node pod-server.js NAME HTTP_PORT TCP_PORT UDP_PORT
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import readline from 'node:readline';

export interface PodAnswer {
  pod: string;
  client: string;
  clientPort: number;
  /** The request line (TCP sessions) or datagram (UDP), echoed. */
  echo?: string;
}

/** Node reports IPv4 peers of dual-stack sockets as ::ffff:a.b.c.d. */
const plain = (address: string | undefined): string => (address ?? '').replace(/^::ffff:/, '');

function serve(name: string, httpPort: number, tcpPort: number, udpPort: number): void {
  // Tell the parent once all four sockets listen, not before: a client may
  // connect the moment it reads this line.
  let waiting = 4;
  const listening = (): void => {
    if (--waiting === 0) process.stdout.write('ready\n');
  };

  const answer = (
    client: string | undefined,
    clientPort: number | undefined,
    echo?: string,
  ): string =>
    JSON.stringify({
      pod: name,
      client: plain(client),
      clientPort: clientPort ?? 0,
      ...(echo === undefined ? {} : { echo }),
    });

  http
    .createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(`${answer(req.socket.remoteAddress, req.socket.remotePort)}\n`);
    })
    .listen(httpPort, '::', listening);

  net
    .createServer((socket) => {
      const lines = readline.createInterface({ input: socket });
      lines.on('line', (line) =>
        socket.write(`${answer(socket.remoteAddress, socket.remotePort, line)}\n`),
      );
      socket.on('error', () => socket.destroy());
    })
    .listen(tcpPort, '::', listening);

  for (const type of ['udp4', 'udp6'] as const) {
    const udp = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
    udp.on('message', (msg, rinfo) =>
      udp.send(answer(rinfo.address, rinfo.port, msg.toString()), rinfo.port, rinfo.address),
    );
    udp.bind(udpPort, type === 'udp4' ? '0.0.0.0' : '::', listening);
  }
}

const [name, httpPort, tcpPort, udpPort] = process.argv.slice(2);
if (!name || !Number(httpPort) || !Number(tcpPort) || !Number(udpPort)) {
  process.stderr.write('usage: pod-server NAME HTTP_PORT TCP_PORT UDP_PORT\n');
  process.exit(2);
}
serve(name, Number(httpPort), Number(tcpPort), Number(udpPort));
