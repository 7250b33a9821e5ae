// Secrets in standalone mode: a v1 Secret manifest (data in base64 or
// stringData in plain text) carries a BGPPeer's MD5 password as it does in a
// cluster. Only the agent's namespace counts, only referenced values reach
// the store, and no value ever appears in a problem or a log line.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { ClusterStore } from '../control/store/cluster-store.js';
import { storeSecretLookup } from '../control/store/secret-lookup.js';
import { parseManifests } from '../control/standalone/manifests.js';
import { mergeContributions } from '../control/standalone/merge.js';
import { StandaloneSource } from '../control/standalone/source.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

const secret = (body: string, namespace = '') => `apiVersion: v1
kind: Secret
metadata:
  name: bgp-auth
${namespace === '' ? '' : `  namespace: ${namespace}\n`}${body}`;

const peer = (name: string, ref: string) => `apiVersion: xlb.dev/v1alpha1
kind: BGPPeer
metadata:
  name: ${name}
spec:
  peerAddress: 192.0.2.1
  peerASN: 65001
  localASN: 65002
  passwordSecretRef: ${ref}
`;

describe('Secret manifests', () => {
  it('decodes data, lets stringData win, and puts a Secret without a namespace in the agent’s', () => {
    const r = parseManifests(
      'auth.yaml',
      secret(
        `type: Opaque\ndata:\n  password: ${b64('from-data')}\n  other: ${b64('kept-out')}\n` +
          'stringData:\n  password: from-string-data\n',
      ),
      { secretNamespace: 'bgp' },
    );
    expect(r.problems).toEqual([]);
    expect(r.objects).toEqual([
      {
        kind: 'Secret',
        key: 'bgp/bgp-auth',
        object: {
          metadata: { namespace: 'bgp', name: 'bgp-auth' },
          values: { password: 'from-string-data', other: 'kept-out' },
        },
        file: 'auth.yaml',
        document: 0,
      },
    ]);
    // xlb-system when nobody says otherwise, as the agent's own default.
    expect(parseManifests('a.yaml', secret('stringData: {password: x}\n')).objects[0]!.key).toBe(
      'xlb-system/bgp-auth',
    );
  });

  it('skips a Secret of another namespace, saying why, and uses the rest of the file', () => {
    const r = parseManifests(
      'auth.yaml',
      `${secret('stringData: {password: elsewhere-pw}\n', 'default')}---\n${peer('tor', '{name: bgp-auth}')}`,
      { secretNamespace: 'xlb-system' },
    );
    expect(r.usable).toBe(true);
    expect(r.objects.map((o) => `${o.kind} ${o.key}`)).toEqual(['BGPPeer tor']);
    expect(r.problems).toEqual([
      {
        file: 'auth.yaml',
        document: 0,
        line: 1,
        code: 'foreignSecret',
        reason:
          "Secret default/bgp-auth skipped: xlb reads Secrets only in its own namespace 'xlb-system' " +
          '(leave metadata.namespace out, or set it to that)',
      },
    ]);
  });

  it('names bad fields without showing any value', () => {
    const r = parseManifests(
      'auth.yaml',
      secret('data:\n  password: "not base64 hunter2!"\n  "bad key": aGk=\nstringData:\n  n: 42\n'),
    );
    expect(r.usable).toBe(false);
    expect(r.problems).toHaveLength(1);
    const reason = r.problems[0]!.reason;
    expect(reason).toContain("Secret 'bgp-auth' is invalid");
    expect(reason).toContain(
      'data.password: is not valid base64 (put plain text under stringData instead)',
    );
    expect(reason).toContain(`data["bad key"]: "bad key" is not a valid Secret key`);
    expect(reason).toContain('stringData.n: expected plain text (a string)');
    expect(reason).not.toContain('hunter2');
    expect(reason).not.toContain('42');
  });

  it('reads a SecretList', () => {
    const list = {
      apiVersion: 'v1',
      kind: 'SecretList',
      items: [
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'a' }, stringData: { k: 'v' } },
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'b' }, data: { k: b64('w') } },
      ],
    };
    const r = parseManifests('list.yaml', JSON.stringify(list));
    expect(r.problems).toEqual([]);
    expect(r.objects.map((o) => o.key)).toEqual(['xlb-system/a', 'xlb-system/b']);
  });

  it('merges into Secrets holding only the values the BGPPeers reference', () => {
    const auth = parseManifests(
      'auth.yaml',
      secret(`stringData: {password: pw-a, token: pw-b, unused: pw-c}\n`),
    );
    const peers = parseManifests(
      'peers.yaml',
      `${peer('tor-a', '{name: bgp-auth}')}---\n${peer('tor-b', '{name: bgp-auth, key: token}')}---\n` +
        peer('tor-c', '{name: bgp-auth, key: unused, namespace: other}'),
    );
    const { snapshot, problems } = mergeContributions(
      [
        { file: 'auth.yaml', objects: auth.objects },
        { file: 'peers.yaml', objects: peers.objects },
      ],
      'xlb-system',
    );
    expect(problems).toEqual([]);
    expect(snapshot.Secret).toEqual([
      {
        metadata: { namespace: 'xlb-system', name: 'bgp-auth' },
        keys: ['password', 'token', 'unused'],
        data: { password: 'pw-a', token: 'pw-b' },
      },
    ]);
  });
});

describe('StandaloneSource with Secrets', () => {
  let dir: string;
  let source: StandaloneSource | undefined;
  let logged: string[];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xlb-standalone-secrets-'));
    logged = [];
  });

  afterEach(async () => {
    try {
      await source?.stop();
    } finally {
      source = undefined;
      await rm(dir, { recursive: true, force: true });
    }
  });

  async function waitFor(store: ClusterStore, check: () => boolean, what: string): Promise<void> {
    if (check()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new Error(`timed out waiting for ${what}`));
      }, 5000);
      const unsubscribe = store.subscribe(() => {
        if (!check()) return;
        clearTimeout(timer);
        unsubscribe();
        resolve();
      });
    });
  }

  it('gives the lookup the password from the files, follows its rotation and removal, and logs no value', async () => {
    await writeFile(join(dir, 'peer.yaml'), peer('tor', '{name: bgp-auth}'));
    await writeFile(
      join(dir, 'auth.yaml'),
      secret(`data: {password: ${b64('pw-first')}, spare: ${b64('pw-spare')}}\n`, 'bgp'),
    );
    const store = new ClusterStore();
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logged.push(chunk.toString());
        done();
      },
    });
    source = new StandaloneSource({
      directory: dir,
      store,
      secretNamespace: 'bgp',
      debounceMs: 10,
      log: pino({ level: 'debug' }, sink),
    });
    await source.start();
    const lookup = storeSecretLookup(store, 'bgp');
    expect(lookup({ name: 'bgp-auth', key: 'password' })).toBe('pw-first');
    expect(store.secret('bgp', 'bgp-auth')).toEqual({
      metadata: { namespace: 'bgp', name: 'bgp-auth' },
      keys: ['password', 'spare'],
      data: { password: 'pw-first' },
    });

    await writeFile(join(dir, 'auth.yaml'), secret('stringData: {password: pw-second}\n'));
    await waitFor(
      store,
      () => store.secret('bgp', 'bgp-auth')?.data.password === 'pw-second',
      'rotation',
    );
    expect(lookup({ name: 'bgp-auth', key: 'password' })).toBe('pw-second');

    // A broken edit keeps the last good password, and the problem shows no value.
    await writeFile(join(dir, 'auth.yaml'), secret('data: {password: "pw-third is not base64"}\n'));
    await new Promise<void>((resolve) => {
      const off = source!.onProblems(() => {
        off();
        resolve();
      });
    });
    expect(source.errors().map((p) => p.code)).toEqual(['invalidObject']);
    expect(lookup({ name: 'bgp-auth', key: 'password' })).toBe('pw-second');

    await rm(join(dir, 'auth.yaml'));
    await waitFor(store, () => store.secret('bgp', 'bgp-auth') === undefined, 'the removal');
    expect(() => lookup({ name: 'bgp-auth', key: 'password' })).toThrow(
      'Secret bgp/bgp-auth does not exist (or is not read yet)',
    );
    const text = logged.join('');
    expect(text).toContain('invalid manifest');
    for (const value of ['pw-first', 'pw-spare', 'pw-second', 'pw-third'])
      expect(text).not.toContain(value);
  });
});
