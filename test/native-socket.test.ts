import net from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { connectTcp, setTcpMd5, socketFd } from '../native/index.js';
import { requirePrivileges } from './support/privileged.js';

/** What a connection attempt came to: the server's greeting, or why not. */
function attempt(options: Parameters<typeof connectTcp>[0], waitMs = 1500): Promise<string> {
  return new Promise((resolve) => {
    const s = connectTcp(options);
    const timer = setTimeout(() => {
      s.destroy();
      resolve('timeout');
    }, waitMs);
    s.on('data', (d: Buffer) => {
      clearTimeout(timer);
      s.destroy();
      resolve(d.toString());
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      resolve(`error: ${e.message}`);
    });
  });
}

describe('TCP MD5 signatures (RFC 2385) on loopback', () => {
  let server: net.Server;
  let port: number;

  beforeAll(async () => {
    requirePrivileges('native-socket');
    server = net.createServer((c) => c.end('hello'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
    setTcpMd5(socketFd(server), '127.0.0.1', 'xlb-secret');
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  it('connects when both ends sign with the same key', async () => {
    expect(await attempt({ host: '127.0.0.1', port, md5Key: 'xlb-secret', ttl: 255 })).toBe(
      'hello',
    );
  });

  it('never completes a handshake with a wrong key or none', async () => {
    expect(await attempt({ host: '127.0.0.1', port, md5Key: 'wrong' })).toBe('timeout');
    expect(await attempt({ host: '127.0.0.1', port })).toBe('timeout');
  });

  it('validates keys and addresses before they reach the kernel', () => {
    expect(() => setTcpMd5(socketFd(server), '127.0.0.1', 'x'.repeat(81))).toThrow(
      /at most 80 bytes/,
    );
    expect(() => setTcpMd5(socketFd(server), 'not-an-ip', 'k')).toThrow();
  });
});
