// What the speaker tests feed BgpSpeaker.update(): the given BGPPeers, one
// advertisement of the pool `public` (203.0.113.0/24) and the model's
// announcement of one address from it, as the agent would pass them.
import { execFileSync } from 'node:child_process';

import { expect } from 'vitest';

import type { SpeakerInput } from '../../../control/bgp/speaker.js';
import { parseIPPool } from '../../../control/resources/ip-pool.js';

/** A BGPPeer named `name` with `spec`. */
export function bgpPeer(spec: Record<string, unknown>, name = 'tor'): unknown {
  return { apiVersion: 'xlb.dev/v1alpha1', kind: 'BGPPeer', metadata: { name }, spec };
}

/** `peers`, the pool `public`, an advertisement of it, and `address` announced. */
export function speakerInput(peers: readonly unknown[], address = '203.0.113.10'): SpeakerInput {
  return {
    peers,
    advertisements: [
      {
        apiVersion: 'xlb.dev/v1alpha1',
        kind: 'BGPAdvertisement',
        metadata: { name: 'public' },
        spec: { ipPools: ['public'] },
      },
    ],
    pools: [
      parseIPPool({
        apiVersion: 'xlb.dev/v1alpha1',
        kind: 'IPPool',
        metadata: { name: 'public' },
        spec: { addresses: ['203.0.113.0/24'] },
      }),
    ],
    announcements: [
      {
        service: 'default/web',
        address,
        family: 4,
        announce: true,
        reason: 'hasEndpoints',
        weight: 1,
        message: 'the Service has ready endpoints',
      },
    ],
  };
}

/**
 * Freezes every process in `ns` (a peer's daemon): a hung node that sends
 * nothing while its sockets stay open (the kernel still ACKs). SIGKILL at
 * cleanup ends a stopped process as well.
 */
export function freezeNamespace(ns: string): void {
  const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
    .split('\n')
    .filter((p) => /^\d+$/.test(p.trim()));
  expect(pids.length).toBeGreaterThan(0);
  for (const pid of pids) process.kill(Number(pid), 'SIGSTOP');
}
