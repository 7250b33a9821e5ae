// BGP configuration without I/O: BGPPeer and BGPAdvertisement validation
// with messages naming the field, a peer's session settings on a node
// (identifier, next hops, TTL, MD5 password from a Secret, timers), node
// selection, and the routes each peer should hold from the model's
// announcements (pools, peers, merged attributes, link bandwidth for Local).
// Also: the YAML directory and the example accept the new kinds.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { pino } from 'pino';
import { describe, expect, it } from 'vitest';

import {
  BgpConfigError,
  indexPools,
  LINK_BANDWIDTH_PER_ENDPOINT,
  peerSelected,
  planPeer,
  routesForPeer,
  validAdvertisements,
  wantedAddresses,
  type SpeakerNode,
} from '../control/bgp/config.js';
import type { Announcement } from '../control/model/types.js';
import { parseBGPAdvertisement } from '../control/resources/bgp-advertisement.js';
import { parseBGPPeer } from '../control/resources/bgp-peer.js';
import { parseIPPool } from '../control/resources/ip-pool.js';
import { validateResource } from '../control/resources/validate.js';
import { StandaloneSource } from '../control/standalone/source.js';
import { ClusterStore } from '../control/store/cluster-store.js';
import { projectRoot } from '../control/paths.js';
import { storeSecretLookup } from '../control/store/secret-lookup.js';

const NODE: SpeakerNode = {
  name: 'node-a',
  labels: { rack: 'r1' },
  addresses: ['2001:db8::a', '10.0.0.1', '10.0.0.99'],
};

function peer(spec: Record<string, unknown>, name = 'tor') {
  return {
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'BGPPeer',
    metadata: { name },
    spec: { peerAddress: '10.0.0.254', peerASN: 65000, localASN: 65001, ...spec },
  };
}

function ad(name: string, spec: Record<string, unknown>) {
  return parseBGPAdvertisement({
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'BGPAdvertisement',
    metadata: { name },
    spec,
  });
}

function announcement(
  address: string,
  announce: boolean,
  reason: Announcement['reason'],
  weight: number,
  service = 'default/web',
): Announcement {
  return {
    service,
    address,
    family: address.includes(':') ? 6 : 4,
    announce,
    reason,
    weight,
    message: '',
  };
}

describe('BGPPeer validation', () => {
  it('fills the defaults', () => {
    expect(parseBGPPeer(peer({})).spec).toEqual({
      peerAddress: '10.0.0.254',
      peerASN: 65000,
      localASN: 65001,
      port: 179,
      holdTime: 90,
      connectRetryTime: 30,
      ebgpMultiHop: false,
      passive: false,
    });
  });

  it.each([
    [{ peerASN: 0 }, 'spec.peerASN: expected an AS number'],
    [{ localASN: '65001' }, 'spec.localASN: expected an AS number'],
    [{ peerAddress: '10.0.0.300' }, 'spec.peerAddress: "10.0.0.300" is not an IP address'],
    [{ holdTime: 2 }, 'spec.holdTime: expected 0 (no keepalives) or a whole number of seconds'],
    [
      { holdTime: 9, keepaliveTime: 9 },
      'spec.keepaliveTime: keepaliveTime 9 s must be below holdTime 9 s',
    ],
    [{ port: 70000 }, 'spec.port: a port is an integer from 1 to 65535'],
    [{ holdtime: 9 }, "unknown field 'holdtime': a BGPPeer spec takes peerAddress"],
    [
      { bfd: { detectMultiplier: 0 } },
      'spec.bfd.detectMultiplier: expected a whole number of packets from 1 to 255',
    ],
    [
      { passwordSecretRef: { key: 'pw' } },
      'spec.passwordSecretRef.name: expected the name of the Secret',
    ],
  ])('rejects %j: %s', (spec, message) => {
    expect(() => parseBGPPeer(peer(spec))).toThrow(message);
  });

  it('is recognised by apiVersion and kind', () => {
    expect(validateResource(peer({})).kind).toBe('BGPPeer');
  });
});

describe('BGPAdvertisement validation', () => {
  it('checks communities with the codec rules and names the entry', () => {
    expect(() => ad('a', { communities: ['65000:70000'] })).toThrow(
      "spec.communities[0]: '65000:70000': value '70000' is not a number in 0..65535",
    );
    expect(() => ad('a', { largeCommunities: ['1:2'] })).toThrow(
      "spec.largeCommunities[0]: '1:2' is not a large community",
    );
    expect(() => ad('a', { localPreference: -1 })).toThrow(
      'spec.localPreference: expected an integer',
    );
    expect(ad('a', {}).spec).toEqual({ communities: [], largeCommunities: [] });
  });

  it('reports invalid advertisements and keeps the valid ones', () => {
    const good = {
      apiVersion: 'xlb.dev/v1alpha1',
      kind: 'BGPAdvertisement',
      metadata: { name: 'good' },
      spec: {},
    };
    const bad = { ...good, metadata: { name: 'bad' }, spec: { communities: ['x'] } };
    const r = validAdvertisements([good, bad]);
    expect(r.advertisements.map((a) => a.metadata.name)).toEqual(['good']);
    expect(r.problems).toEqual([
      expect.stringMatching(
        /^BGPAdvertisement 'bad' is invalid: spec\.communities\[0\]: 'x' is not a community/,
      ),
    ]);
  });
});

describe('a peer on this node', () => {
  it('selects by node labels', () => {
    expect(peerSelected(parseBGPPeer(peer({})), NODE)).toBe(true);
    expect(
      peerSelected(parseBGPPeer(peer({ nodeSelector: { matchLabels: { rack: 'r1' } } })), NODE),
    ).toBe(true);
    expect(
      peerSelected(parseBGPPeer(peer({ nodeSelector: { matchLabels: { rack: 'r2' } } })), NODE),
    ).toBe(false);
  });

  it('becomes session settings: identifier and next hops from the node, timers, TTL', () => {
    const plan = planPeer(peer({ holdTime: 30, connectRetryTime: 5, port: 1179 }), NODE);
    expect(plan.options).toEqual({
      localAs: 65001,
      peerAs: 65000,
      routerId: '10.0.0.1',
      peerAddress: '10.0.0.254',
      peerPort: 1179,
      holdTime: 30,
      passive: false,
      families: ['ipv4', 'ipv6'],
      nextHops: { ipv4: '10.0.0.1', ipv6: '2001:db8::a' },
      connectRetryMs: 5000,
    });
    // A directly connected external peer: TTL 1; multihop or internal: 255.
    expect(plan.ttl).toBe(1);
    expect(planPeer(peer({ ebgpMultiHop: true }), NODE).ttl).toBe(255);
    expect(planPeer(peer({ localASN: 65000 }), NODE).ttl).toBe(255);
    expect(plan.md5Key).toBeUndefined();
  });

  it('a source address is the next hop of its family and must match the peer family', () => {
    const plan = planPeer(peer({ sourceAddress: '10.0.0.99' }), NODE);
    expect(plan.options.localAddress).toBe('10.0.0.99');
    expect(plan.options.nextHops).toEqual({ ipv4: '10.0.0.99', ipv6: '2001:db8::a' });
    expect(() => planPeer(peer({ sourceAddress: '2001:db8::a' }), NODE)).toThrow(
      "BGPPeer 'tor': spec.sourceAddress 2001:db8::a is IPv6 but spec.peerAddress 10.0.0.254 is IPv4",
    );
  });

  it('the key changes exactly when the session must be rebuilt', () => {
    const a = planPeer(peer({}), NODE);
    expect(planPeer(peer({}), NODE).key).toBe(a.key);
    expect(planPeer(peer({ holdTime: 30 }), NODE).key).not.toBe(a.key);
    expect(planPeer(peer({ bfd: { enabled: true } }), NODE).key).not.toBe(a.key);
    // A label change that keeps the peer selected rebuilds nothing.
    expect(planPeer(peer({}), { ...NODE, labels: { rack: 'r1', other: 'x' } }).key).toBe(a.key);
  });

  it('reads the MD5 password from the Secret, and refuses to run without it', () => {
    const ref = { namespace: 'xlb', name: 'tor-md5' };
    const seen: unknown[] = [];
    const plan = planPeer(peer({ passwordSecretRef: ref }), NODE, (r) => {
      seen.push(r);
      return 's3cret';
    });
    expect(seen).toEqual([{ namespace: 'xlb', name: 'tor-md5', key: 'password' }]);
    expect(plan.md5Key).toBe('s3cret');
    expect(() => planPeer(peer({ passwordSecretRef: ref }), NODE, () => undefined)).toThrow(
      "BGPPeer 'tor': spec.passwordSecretRef: Secret xlb/tor-md5 has no key 'password'",
    );
    expect(() => planPeer(peer({ passwordSecretRef: ref }), NODE)).toThrow(BgpConfigError);
    expect(() => planPeer(peer({ passwordSecretRef: ref }), NODE, () => 'x'.repeat(81))).toThrow(
      'longer than 80 bytes',
    );
  });

  it('is refused with the reason when invalid or when the node has no IPv4 address', () => {
    expect(() => planPeer(peer({ peerASN: -1 }), NODE)).toThrow(
      /^BGPPeer 'tor': spec\.peerASN: expected an AS number/,
    );
    expect(() => planPeer(peer({}), { ...NODE, addresses: ['2001:db8::a'] })).toThrow(
      "BGPPeer 'tor': node node-a has no IPv4 address to use as the BGP identifier (addresses: 2001:db8::a)",
    );
  });
});

describe('routes from the model', () => {
  const pools = indexPools([
    parseIPPool({
      apiVersion: 'xlb.dev/v1alpha1',
      kind: 'IPPool',
      metadata: { name: 'public' },
      spec: { addresses: ['203.0.113.0/24', '2001:db8:ff::/64'] },
    }),
    parseIPPool({
      apiVersion: 'xlb.dev/v1alpha1',
      kind: 'IPPool',
      metadata: { name: 'private' },
      spec: { addresses: ['198.51.100.10-198.51.100.20'] },
    }),
  ]);

  it('knows the pool of an address', () => {
    expect(pools.poolOf('203.0.113.7')).toBe('public');
    expect(pools.poolOf('2001:db8:ff::7')).toBe('public');
    expect(pools.poolOf('198.51.100.20')).toBe('private');
    expect(pools.poolOf('198.51.100.21')).toBeUndefined();
  });

  it('announces only what the model decided, merging Services that share an address', () => {
    const wanted = wantedAddresses([
      announcement('203.0.113.1', true, 'localEndpoints', 3),
      announcement('203.0.113.2', false, 'noLocalEndpoints', 0),
      announcement('203.0.113.3', false, 'nodeExcluded', 0),
      announcement('2001:db8:ff:0::1', true, 'hasEndpoints', 1),
      // Shared by a Local and a Cluster Service: every node is equal.
      announcement('203.0.113.4', true, 'localEndpoints', 2, 'default/a'),
      announcement('203.0.113.4', true, 'hasEndpoints', 1, 'default/b'),
      // Shared by two Local Services: the larger weight.
      announcement('203.0.113.5', true, 'localEndpoints', 2, 'default/a'),
      announcement('203.0.113.5', true, 'localEndpoints', 5, 'default/b'),
    ]);
    expect(wanted).toEqual([
      { address: '2001:db8:ff::1', family: 6, localEndpoints: undefined },
      { address: '203.0.113.1', family: 4, localEndpoints: 3 },
      { address: '203.0.113.4', family: 4, localEndpoints: undefined },
      { address: '203.0.113.5', family: 4, localEndpoints: 5 },
    ]);
  });

  it('gives each peer the addresses its advertisements select, with merged attributes', () => {
    const wanted = wantedAddresses([
      announcement('203.0.113.1', true, 'localEndpoints', 3),
      announcement('2001:db8:ff::1', true, 'hasEndpoints', 1),
      announcement('198.51.100.10', true, 'hasEndpoints', 1),
    ]);
    const ads = [
      ad('public', {
        ipPools: ['public'],
        communities: ['65001:2', 'no-export'],
        localPreference: 150,
      }),
      ad('everything', {
        communities: ['65001:1'],
        largeCommunities: ['65001:1:1'],
        localPreference: 120,
      }),
      ad('only-b', { ipPools: ['public'], peers: ['b'], communities: ['65001:9'] }),
    ];
    expect(routesForPeer('a', wanted, ads, pools)).toEqual([
      {
        prefix: '198.51.100.10/32',
        attributes: { communities: ['65001:1'], largeCommunities: ['65001:1:1'], localPref: 120 },
      },
      {
        prefix: '2001:db8:ff::1/128',
        attributes: {
          communities: ['65001:1', '65001:2', 'no-export'],
          largeCommunities: ['65001:1:1'],
          localPref: 150,
        },
      },
      {
        prefix: '203.0.113.1/32',
        attributes: {
          communities: ['65001:1', '65001:2', 'no-export'],
          largeCommunities: ['65001:1:1'],
          localPref: 150,
          linkBandwidth: 3 * LINK_BANDWIDTH_PER_ENDPOINT,
        },
      },
    ]);
    expect(routesForPeer('b', wanted, ads, pools)[2]!.attributes!.communities).toContain('65001:9');
    // No advertisement: nothing is announced.
    expect(routesForPeer('a', wanted, [], pools)).toEqual([]);
    expect(routesForPeer('a', wanted, [ads[0]!], pools).map((r) => r.prefix)).toEqual([
      '2001:db8:ff::1/128',
      '203.0.113.1/32',
    ]);
  });
});

describe('manifests', () => {
  it('the YAML directory accepts BGPPeer and BGPAdvertisement and reports a bad one with its field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xlbt-bgp-config-'));
    const store = new ClusterStore();
    const source = new StandaloneSource({ directory: dir, store, log: pino({ level: 'silent' }) });
    try {
      writeFileSync(
        join(dir, 'bgp.yaml'),
        [
          'apiVersion: xlb.dev/v1alpha1',
          'kind: BGPPeer',
          'metadata: {name: tor}',
          'spec: {peerAddress: 192.0.2.1, peerASN: 65000, localASN: 65001}',
          '---',
          'apiVersion: xlb.dev/v1alpha1',
          'kind: BGPAdvertisement',
          'metadata: {name: all}',
          "spec: {communities: ['65001:1']}",
        ].join('\n'),
      );
      writeFileSync(
        join(dir, 'bad.yaml'),
        [
          'apiVersion: xlb.dev/v1alpha1',
          'kind: BGPPeer',
          'metadata: {name: other}',
          'spec: {peerAddress: 192.0.2.9, peerASN: 0, localASN: 65001}',
        ].join('\n'),
      );
      await source.start();
      expect(store.bgpPeers().map((p) => p.metadata.name)).toEqual(['tor']);
      expect(store.bgpPeers()[0]!.spec.holdTime).toBe(90);
      expect(store.bgpAdvertisements().map((a) => a.spec.communities)).toEqual([['65001:1']]);
      expect(source.errors().map((e) => `${e.file}: ${e.reason}`)).toEqual([
        expect.stringMatching(/bad\.yaml: .*spec\.peerASN: expected an AS number/),
      ]);
    } finally {
      await source.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the example directory holds a valid peer, its password Secret and an advertisement', async () => {
    const store = new ClusterStore();
    const source = new StandaloneSource({
      directory: join(projectRoot(), 'examples', 'standalone'),
      store,
      log: pino({ level: 'silent' }),
    });
    await source.start();
    try {
      expect(source.errors()).toEqual([]);
      expect(store.bgpPeers().map((p) => p.metadata.name)).toEqual(['tor']);
      const [advertisement] = store.bgpAdvertisements();
      // It names the example's pool.
      expect(advertisement?.spec.ipPools).toEqual(store.pools().map((p) => p.metadata.name));
      // Its MD5 password comes from the example's Secret, in the agent's default namespace.
      const ref = store.bgpPeers()[0]!.spec.passwordSecretRef!;
      expect(storeSecretLookup(store, 'xlb-system')(ref)).toBe('change-me-to-the-routers-password');
    } finally {
      await source.stop();
    }
  });
});
