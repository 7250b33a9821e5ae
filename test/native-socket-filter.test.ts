// Classic BPF socket filters on UDP sockets (the BFD received-TTL check of
// RFC 5881 section 5): over loopback, where the TTL a sender sets is the TTL
// the receiver sees, a datagram sent with TTL (hop limit) 254 never reaches
// the socket and shows up in its drop count, one sent with 255 does, for
// IPv4, IPv6 and IPv4-mapped traffic on a dual-stack socket.
import dgram from 'node:dgram';
import { closeSync, openSync } from 'node:fs';

import { afterEach, describe, expect, it } from 'vitest';

import { attachSocketFilter, dgramSocketFd, minTtlFilter, socketDrops } from '../native/index.js';
import { until } from '../control/topology/agent-harness.js';
import { Cleanup } from './support/bgp/harness.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function udp(type: 'udp4' | 'udp6', address: string, ipv6Only = true): Promise<dgram.Socket> {
  const s = dgram.createSocket(type === 'udp6' ? { type, ipv6Only } : { type });
  await new Promise<void>((resolve) => s.bind(0, address, resolve));
  cleanup.add(() => s.close());
  return s;
}

/** A receiver with the filter and what it has received. */
async function filtered(type: 'udp4' | 'udp6', address: string, ipv6Only = true) {
  const socket = await udp(type, address, ipv6Only);
  const fd = dgramSocketFd(socket);
  attachSocketFilter(fd, minTtlFilter(255));
  const got: string[] = [];
  socket.on('message', (m) => got.push(m.toString()));
  return { socket, fd, got };
}

const CASES = [
  {
    name: 'IPv4',
    type: 'udp4',
    listen: '127.0.0.1',
    sender: 'udp4',
    from: '127.0.0.1',
    to: '127.0.0.1',
  },
  { name: 'IPv6', type: 'udp6', listen: '::1', sender: 'udp6', from: '::1', to: '::1' },
  {
    name: 'IPv4-mapped on a dual-stack IPv6 socket',
    type: 'udp6',
    listen: '::',
    ipv6Only: false,
    sender: 'udp4',
    from: '127.0.0.1',
    to: '127.0.0.1',
  },
] as const;

describe('minimum-TTL socket filter', () => {
  for (const c of CASES) {
    it(`${c.name}: drops TTL 254 (counted), keeps TTL 255`, async () => {
      const r = await filtered(c.type, c.listen, 'ipv6Only' in c ? c.ipv6Only : true);
      const port = r.socket.address().port;
      const s = await udp(c.sender, c.from);
      expect(socketDrops(r.fd)).toBe(0);
      s.setTTL(254);
      s.send('ttl 254', port, c.to);
      await until(
        () =>
          `the TTL 254 datagram to be dropped (drops ${socketDrops(r.fd)}, got ${r.got.join()})`,
        () => socketDrops(r.fd) === 1,
        5_000,
        5,
      );
      s.setTTL(255);
      s.send('ttl 255', port, c.to);
      await until(
        () => `the TTL 255 datagram (got ${r.got.join()})`,
        () => r.got.length > 0,
        5_000,
        5,
      );
      // Sent after the 254 one: had that one been let through, it would be here first.
      expect(r.got).toEqual(['ttl 255']);
      expect(socketDrops(r.fd)).toBe(1);
    });
  }

  it('an unfiltered socket takes any TTL and counts no drop', async () => {
    const r = await udp('udp4', '127.0.0.1');
    const got: string[] = [];
    r.on('message', (m) => got.push(m.toString()));
    const s = await udp('udp4', '127.0.0.1');
    s.setTTL(1);
    s.send('ttl 1', r.address().port, '127.0.0.1');
    await until(
      () => 'the TTL 1 datagram',
      () => got.length === 1,
      5_000,
      5,
    );
    expect(socketDrops(dgramSocketFd(r))).toBe(0);
  });

  it('a lower minimum keeps what reaches it', async () => {
    const r = await udp('udp4', '127.0.0.1');
    attachSocketFilter(dgramSocketFd(r), minTtlFilter(64));
    const got: string[] = [];
    r.on('message', (m) => got.push(m.toString()));
    const s = await udp('udp4', '127.0.0.1');
    s.setTTL(63);
    // send() resolves the address first: wait for it before changing the TTL again.
    await new Promise((resolve) => s.send('ttl 63', r.address().port, '127.0.0.1', resolve));
    s.setTTL(64);
    s.send('ttl 64', r.address().port, '127.0.0.1');
    await until(
      () => `the TTL 64 datagram (got ${got.join()})`,
      () => got.length === 1,
      5_000,
      5,
    );
    expect(got).toEqual(['ttl 64']);
    expect(socketDrops(dgramSocketFd(r))).toBe(1);
  });

  it('refuses bad programs, bad minimums and sockets without a descriptor', () => {
    const r = dgram.createSocket('udp4');
    cleanup.add(() => r.close());
    expect(() => dgramSocketFd(r)).toThrow(/not bound/);
    expect(() => minTtlFilter(256)).toThrow(/0\.\.255/);
    expect(() => attachSocketFilter(1000, [])).toThrow(/1\.\.4096 instructions/);
    expect(() => attachSocketFilter(1000, [{ code: 0x10000, jt: 0, jf: 0, k: 0 }])).toThrow(
      /out of range/,
    );
    // A descriptor that is not a socket: the kernel's answer, with errno.
    const file = openSync('/dev/null', 'r');
    cleanup.add(() => closeSync(file));
    expect(() => attachSocketFilter(file, minTtlFilter(255))).toThrow(
      /SO_ATTACH_FILTER.*ENOTSOCK|errno 88/,
    );
    expect(() => socketDrops(file)).toThrow(/SO_MEMINFO/);
  });
});
