// BGP MD5 passwords from Secrets in the store: what the store keeps of a
// Secret (only the referenced values), the lookup the agent hands the
// speaker (resolving, rotating, missing, another namespace refused with the
// reason), the plan a rotation changes, and end to end with BIRD 2 in a
// network namespace: a BGPPeer whose Secret holds BIRD's password comes up,
// a rotated password rebuilds the session with the new key, a Secret gone
// keeps the running session and says why, and a wrong password never comes
// up and is named as the likely cause. No password reaches a log or a metric.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';

import {
  BgpConfigError,
  planPeer,
  SecretLookupError,
  type SpeakerNode,
} from '../control/bgp/config.js';
import { BgpSpeaker, type SpeakerReport } from '../control/bgp/speaker.js';
import { parseBGPPeer } from '../control/resources/bgp-peer.js';
import { ClusterStore, StoreError, type StoreChanges } from '../control/store/cluster-store.js';
import { storeSecretLookup } from '../control/store/secret-lookup.js';
import {
  keepWanted,
  narrowStored,
  secretFromApi,
  wantedSecretKeys,
  wantsMore,
  type StoredSecret,
} from '../control/store/secrets.js';
import { until } from '../control/topology/agent-harness.js';
import { BirdProcess } from '../control/topology/bird.js';
import { Cleanup, recordingLog } from './support/bgp/harness.js';
import { BgpLink, PEER, XLB } from './support/bgp/link.js';
import { requirePrivileges } from './support/privileged.js';

const NS = 'xlb-system';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function peerObject(ref: Record<string, string> | undefined, name = 'tor') {
  return {
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'BGPPeer',
    metadata: { name },
    spec: {
      peerAddress: PEER.v4,
      peerASN: 65001,
      localASN: 65002,
      holdTime: 9,
      connectRetryTime: 1,
      ...(ref === undefined ? {} : { passwordSecretRef: ref }),
    },
  };
}

/** A Secret as the sources store it: only what `store`'s peers reference. */
function putSecret(store: ClusterStore, name: string, values: Record<string, string>): void {
  store.applySecret(
    keepWanted(
      { metadata: { namespace: NS, name }, values },
      wantedSecretKeys(store.bgpPeers(), NS),
    ),
  );
}

const SELF: SpeakerNode = { name: 'node-a', labels: {}, addresses: [XLB.v4] };

describe('Secrets in the store', () => {
  it('keeps the key names and only the referenced values, and narrows them when a reference goes', () => {
    const peers = [
      peerObject({ name: 'auth' }, 'a'),
      peerObject({ name: 'auth', key: 'token' }, 'b'),
      peerObject({ name: 'auth', key: 'other', namespace: 'default' }, 'c'),
      peerObject(undefined, 'd'),
      { spec: { passwordSecretRef: { name: 42 } } },
      'not even an object',
    ];
    const wanted = wantedSecretKeys(peers, NS);
    expect(wanted).toEqual(new Map([['auth', new Set(['password', 'token'])]]));
    const values = { password: 'pw-a', token: 'pw-b', other: 'pw-c' };
    const stored = keepWanted({ metadata: { namespace: NS, name: 'auth' }, values }, wanted);
    expect(stored).toEqual({
      metadata: { namespace: NS, name: 'auth' },
      keys: ['other', 'password', 'token'],
      data: { password: 'pw-a', token: 'pw-b' },
    });
    const fewer = wantedSecretKeys([peers[0]], NS);
    expect(wantsMore(wanted, fewer)).toBe(false);
    expect(wantsMore(fewer, wanted)).toBe(true);
    expect(wantsMore(new Map(), new Map())).toBe(false);
    expect(narrowStored(stored, fewer).data).toEqual({ password: 'pw-a' });
    expect(narrowStored(stored, new Map()).data).toEqual({});
    // As the API server sends it: base64 data, no stringData.
    expect(
      secretFromApi({
        metadata: { name: 'auth', namespace: NS, annotations: { a: 'b' } },
        data: { password: Buffer.from('pw-a').toString('base64'), odd: 7 },
      }),
    ).toEqual({ metadata: { namespace: NS, name: 'auth' }, values: { password: 'pw-a' } });
    expect(secretFromApi({ metadata: { name: 'auth' } })).toBeUndefined();
  });

  it('stores frozen copies, notifies once per burst under Secret, and nothing for an equal write', async () => {
    const store = new ClusterStore();
    const seen: StoreChanges[] = [];
    store.subscribe((c) => seen.push(c));
    const secret: StoredSecret = {
      metadata: { namespace: NS, name: 'auth' },
      keys: ['password'],
      data: { password: 'pw-a' },
    };
    expect(store.applySecret(secret)).toBe(true);
    expect(store.applySecret(structuredClone(secret))).toBe(false);
    await Promise.resolve();
    expect(seen).toHaveLength(1);
    expect([...seen[0]!.Secret!]).toEqual([`${NS}/auth`]);
    expect(seen[0]!.Service.size).toBe(0);
    expect(Object.isFrozen(store.secret(NS, 'auth')!.data)).toBe(true);

    const other = { ...secret, metadata: { namespace: NS, name: 'zz' } };
    expect(() => store.replaceAll({ Secret: [other, other] })).toThrow(StoreError);
    expect(store.secrets().map((s) => s.metadata.name)).toEqual(['auth']);
    store.replaceAll({ Secret: [other] });
    await Promise.resolve();
    expect(store.secrets().map((s) => s.metadata.name)).toEqual(['zz']);
    expect([...seen[1]!.Secret!].sort()).toEqual([`${NS}/auth`, `${NS}/zz`]);
    expect(store.deleteSecret(`${NS}/zz`)).toBe(true);
    expect(store.deleteSecret(`${NS}/zz`)).toBe(false);
  });
});

describe('the store lookup and the peer plan', () => {
  it('resolves, follows a rotation into a new plan key, and names every way to miss', () => {
    const store = new ClusterStore();
    store.apply('BGPPeer', parseBGPPeer(peerObject({ name: 'auth' })));
    const lookup = storeSecretLookup(store, NS);
    const peer = peerObject({ name: 'auth' });
    const plan = () => planPeer(peer, SELF, lookup);

    expect(() => plan()).toThrow(
      new BgpConfigError(
        'tor',
        `spec.passwordSecretRef: Secret ${NS}/auth does not exist (or is not read yet); ` +
          'the session is not started without its MD5 password',
      ),
    );

    putSecret(store, 'auth', { password: 'pw-one', other: 'pw-x' });
    const first = plan();
    expect(first.md5Key).toBe('pw-one');
    expect(lookup({ name: 'auth', key: 'password' })).toBe('pw-one');

    putSecret(store, 'auth', { password: 'pw-two', other: 'pw-x' });
    const second = plan();
    expect(second.md5Key).toBe('pw-two');
    // The speaker rebuilds a session exactly when the key changes.
    expect(second.key).not.toBe(first.key);
    expect(plan().key).toBe(second.key);

    expect(() => lookup({ name: 'auth', key: 'token' })).toThrow(
      new SecretLookupError(`Secret ${NS}/auth has no key 'token' (it has keys other, password)`),
    );
    // A key the Secret has but no peer referenced when it was read.
    expect(() => lookup({ name: 'auth', key: 'other' })).toThrow(
      `key 'other' of Secret ${NS}/auth is not read yet`,
    );
    putSecret(store, 'auth', { password: '' });
    expect(() => lookup({ name: 'auth', key: 'password' })).toThrow(
      `key 'password' of Secret ${NS}/auth is empty`,
    );
    expect(() => lookup({ namespace: 'team-a', name: 'auth', key: 'password' })).toThrow(
      `Secret team-a/auth is in namespace 'team-a', but the agent reads Secrets only in its own ` +
        `namespace '${NS}' (least privilege); create the Secret in '${NS}' and leave ` +
        'passwordSecretRef.namespace out',
    );
    // Its own namespace named explicitly is fine.
    putSecret(store, 'auth', { password: 'pw-three' });
    expect(lookup({ namespace: NS, name: 'auth', key: 'password' })).toBe('pw-three');
    // A lookup's own bug is not turned into a configuration problem.
    expect(() =>
      planPeer(peer, SELF, () => {
        throw new TypeError('bug');
      }),
    ).toThrow(TypeError);
  });
});

function birdConfig(password: string): string {
  return `
router id ${PEER.v4};
protocol device {}
protocol bgp xlb {
  local ${PEER.v4} as 65001;
  neighbor ${XLB.v4} as 65002;
  passive on;
  password "${password}";
  connect delay time 1;
  error wait time 1, 2;
  ipv4 { import all; export none; };
}
`;
}

async function setUp(birdPassword: string) {
  requirePrivileges('bgp-secrets');
  const link = BgpLink.build();
  cleanup.add(() => link.destroy());
  const bird = await BirdProcess.start(link.peerNs, birdConfig(birdPassword));
  cleanup.add(() => bird.stop());
  const { log, lines } = recordingLog();
  const registry = new Registry();
  const store = new ClusterStore();
  const speaker = new BgpSpeaker({
    node: SELF,
    connect: ({ host, port, md5Key, ttl }) =>
      link.connect(host, port, { ttl, ...(md5Key === undefined ? {} : { md5Password: md5Key }) }),
    secrets: storeSecretLookup(store, NS),
    sessionDefaults: { backoff: { initialMs: 100, maxMs: 500, jitter: 0 } },
    registry,
    log,
  });
  cleanup.add(() => speaker.stop());
  let report: SpeakerReport | undefined;
  // As the agent does: every store change feeds the speaker the whole configuration.
  const feed = () => {
    report = speaker.update({
      peers: store.bgpPeers(),
      advertisements: [],
      pools: [],
      announcements: [],
    });
  };
  cleanup.add(store.subscribe(feed));
  const context = () =>
    `xlb log:\n${lines.slice(-10).join('\n')}\nBIRD:\n${bird.birdc('show protocols all xlb')}`;
  return { bird, store, speaker, registry, lines, context, report: () => report };
}

/** What a password could leak into: every log line and every metric. */
async function leaks(registry: Registry, lines: string[], passwords: string[]): Promise<string[]> {
  const text = `${lines.join('\n')}\n${await registry.metrics()}`;
  return passwords.filter((p) => text.includes(p));
}

describe('MD5 passwords from Secrets, with BIRD 2', () => {
  it('comes up with the password in the Secret, rebuilds with a rotated one, and keeps the session when the Secret goes', async () => {
    const { bird, store, speaker, registry, lines, context, report } = await setUp('pw-first');
    store.apply('BGPPeer', parseBGPPeer(peerObject({ name: 'bgp-auth' })));
    putSecret(store, 'bgp-auth', { password: 'pw-first', unrelated: 'pw-unrelated' });
    await until(
      () => `BIRD Established with the Secret's password (${context()})`,
      () => bird.bgpState('xlb') === 'Established',
      15_000,
    );
    const first = speaker.sessions().get('tor')!;
    await until(
      () => `our side Established (${context()})`,
      () => first.state === 'Established',
    );
    expect(report()?.peers.map((p) => `${p.name} ${p.status}`)).toEqual(['tor running']);
    expect(report()?.problems).toEqual([]);

    // Rotation: BIRD takes the new password, then the Secret changes.
    writeFileSync(join(bird.dir, 'bird.conf'), birdConfig('pw-second'));
    bird.birdc('configure');
    putSecret(store, 'bgp-auth', { password: 'pw-second', unrelated: 'pw-unrelated' });
    const second = await until(
      () => `a new session with the rotated key, Established (${context()})`,
      () => {
        const s = speaker.sessions().get('tor');
        return s !== first && s?.state === 'Established' && s;
      },
      15_000,
    );
    expect(second.options.md5Password).toBe('pw-second');
    await until(
      () => `BIRD Established with the rotated password (${context()})`,
      () => bird.bgpState('xlb') === 'Established',
      15_000,
    );

    // The Secret deleted: the peer is reported invalid, naming the Secret; the session carries on.
    store.deleteSecret(`${NS}/bgp-auth`);
    await until(
      () => `the peer reported invalid (${JSON.stringify(report())})`,
      () => report()?.peers[0]?.status === 'invalid',
    );
    expect(report()?.peers).toEqual([
      {
        name: 'tor',
        status: 'invalid',
        kept: true,
        message:
          `BGPPeer 'tor': spec.passwordSecretRef: Secret ${NS}/bgp-auth does not exist (or is ` +
          'not read yet); the session is not started without its MD5 password',
      },
    ]);
    expect(speaker.sessions().get('tor')).toBe(second);
    expect(second.state).toBe('Established');
    expect(bird.bgpState('xlb')).toBe('Established');

    expect(await leaks(registry, lines, ['pw-first', 'pw-second', 'pw-unrelated'])).toEqual([]);
  });

  it('never comes up with a wrong password in the Secret, and names the password as the likely cause', async () => {
    const { bird, store, speaker, registry, lines, context, report } = await setUp('pw-right');
    store.apply('BGPPeer', parseBGPPeer(peerObject({ name: 'bgp-auth' })));
    putSecret(store, 'bgp-auth', { password: 'pw-wrong' });
    await until(
      () => `the session (${JSON.stringify(report())})`,
      () => speaker.sessions().get('tor'),
    );
    const session = speaker.sessions().get('tor')!;
    const reported = await until(
      () => `the session to report the unanswered connection (${context()})`,
      () => session.lastError?.includes('not answered') && session.lastError,
      10_000,
    );
    expect(reported).toMatch(/TCP MD5 is on: a password that differs from the peer's/);
    expect(session.state).not.toBe('Established');
    expect(bird.bgpState('xlb')).not.toBe('Established');
    expect(await leaks(registry, lines, ['pw-right', 'pw-wrong'])).toEqual([]);
  });
});
