// Standalone mode: manifest parsing and validation (pure), pool validation,
// and the directory watcher against real files in a temporary directory.
import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { projectRoot } from '../control/paths.js';
import { InvalidResourceError } from '../control/resources/errors.js';
import { parseAddressBlock, parseIPPool } from '../control/resources/ip-pool.js';
import { ClusterStore } from '../control/store/cluster-store.js';
import { parseManifests, type ManifestProblem } from '../control/standalone/manifests.js';
import { mergeContributions } from '../control/standalone/merge.js';
import { StandaloneSource, StandaloneSourceError } from '../control/standalone/source.js';

const SERVICE = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: LoadBalancer
  ports:
    - name: http
      port: 80
      targetPort: 8080
    - name: dns
      port: 53
      protocol: UDP
status:
  loadBalancer:
    ingress:
      - ip: 203.0.113.1
`;

const SLICE = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
endpoints:
  - addresses: [198.51.100.11]
    nodeName: node-a
`;

const node = (name: string, address: string) => `apiVersion: v1
kind: Node
metadata:
  name: ${name}
status:
  addresses:
    - type: InternalIP
      address: ${address}
`;

const POOL = `apiVersion: xlb.dev/v1alpha1
kind: IPPool
metadata:
  name: default
spec:
  addresses: [203.0.113.0/28]
`;

const svc = (name: string, port: number) =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec: {type: LoadBalancer, ports: [{port: ${port}}]}\n`;

describe('parseManifests', () => {
  it('reads several documents, applying the apiserver defaults and keeping other fields', () => {
    const r = parseManifests('web.yaml', `${SERVICE}---\n${SLICE}---\n# only a comment\n---\n`);
    expect(r.problems).toEqual([]);
    expect(r.usable).toBe(true);
    expect(r.objects.map((o) => [o.kind, o.key, o.document])).toEqual([
      ['Service', 'default/web', 0],
      ['EndpointSlice', 'default/web-1', 1],
    ]);
    const service = r.objects[0]!;
    if (service.kind !== 'Service') throw new Error('expected a Service');
    expect(service.object.metadata?.namespace).toBe('default');
    expect(service.object.spec?.ports).toEqual([
      { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' },
      { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' },
    ]);
    expect(service.object.spec?.externalTrafficPolicy).toBe('Cluster');
    expect(service.object.status?.loadBalancer?.ingress).toEqual([{ ip: '203.0.113.1' }]);
  });

  it('keeps unknown fields, as real Kubernetes objects have many', () => {
    const text = SLICE.replace(
      '    nodeName: node-a',
      '    nodeName: node-a\n    zone: z1\n    x-extra: 1',
    );
    const r = parseManifests('s.yaml', `${text}metadata2: kept\n`);
    expect(r.problems).toEqual([]);
    expect(r.objects[0]!.object).toMatchObject({
      metadata2: 'kept',
      endpoints: [{ addresses: ['198.51.100.11'], zone: 'z1', 'x-extra': 1 }],
    });
  });

  it('reads a kind: List, reporting bad items by index', () => {
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-a' } },
        { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-b', namespace: 'ignored' } },
      ],
    };
    const r = parseManifests('nodes.yaml', JSON.stringify(list));
    expect(r.problems).toEqual([]);
    expect(r.objects.map((o) => o.key)).toEqual(['node-a', 'node-b']);
    expect(r.objects[1]!.object.metadata).toEqual({ name: 'node-b' });

    list.items.push({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'Bad_Name' } });
    const bad = parseManifests('nodes.yaml', JSON.stringify(list));
    expect(bad.usable).toBe(false);
    expect(bad.problems).toEqual([
      expect.objectContaining({
        file: 'nodes.yaml',
        document: 0,
        code: 'invalidObject',
        reason: expect.stringContaining(
          'items[2].metadata.name: "Bad_Name" is not a valid Node name',
        ) as string,
      }),
    ]);
  });

  it('reports unknown kinds without rejecting the rest of the file', () => {
    const cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n';
    const old = 'apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: y}\n';
    const r = parseManifests('mixed.yaml', `${cm}---\n${POOL}---\n${old}`);
    expect(r.usable).toBe(true);
    expect(r.objects.map((o) => o.key)).toEqual(['default']);
    expect(r.problems.map((p) => [p.code, p.document, p.line])).toEqual([
      ['unknownKind', 0, 1],
      ['unknownKind', 2, 12],
    ]);
    expect(r.problems[0]!.reason).toMatch(/does not read "v1" "ConfigMap"/);
    expect(r.problems[1]!.reason).toBe(
      'xlb reads EndpointSlice as apiVersion discovery.k8s.io/v1, not "discovery.k8s.io/v1beta1"',
    );
  });

  it.each([
    ['broken YAML', `${SERVICE}---\nkind: [Service\n`, 'invalidYaml', 1, /Flow sequence|flow/i],
    ['duplicate keys', 'kind: Node\nkind: Node\n', 'invalidYaml', 0, /unique/],
    ['a scalar document', 'just text\n', 'invalidObject', 0, /must be a map/],
    ['no kind', 'apiVersion: v1\nmetadata: {name: x}\n', 'invalidObject', 0, /needs a kind/],
    [
      'no apiVersion',
      'kind: Node\nmetadata: {name: x}\n',
      'invalidObject',
      0,
      /needs an apiVersion/,
    ],
    [
      'no name',
      'apiVersion: v1\nkind: Node\nmetadata: {}\n',
      'invalidObject',
      0,
      /metadata.name: every Node needs a name/,
    ],
    [
      'a bad port',
      svc('web', 70000),
      'invalidObject',
      0,
      /spec.ports\[0\].port: a port is an integer from 1 to 65535/,
    ],
    [
      'a lower-case protocol',
      svc('web', 80).replace('port: 80', 'port: 80, protocol: tcp'),
      'invalidObject',
      0,
      /spec.ports\[0\].protocol: protocol is TCP, UDP or SCTP/,
    ],
    [
      'unnamed ports',
      svc('web', 80).replace('[{port: 80}]', '[{port: 80}, {port: 443}]'),
      'invalidObject',
      0,
      /spec.ports\[0\].name: a Service with several ports must name each one/,
    ],
    [
      'a LoadBalancer without ports',
      svc('web', 80).replace(', ports: [{port: 80}]', ''),
      'invalidObject',
      0,
      /spec.ports: a LoadBalancer Service needs at least one port/,
    ],
    [
      'an IPv6 address in an IPv4 slice',
      SLICE.replace('198.51.100.11', '2001:db8::1'),
      'invalidObject',
      0,
      /endpoints\[0\].addresses\[0\]: "2001:db8::1" is not an IPv4 address/,
    ],
    [
      'a slice without its Service label',
      SLICE.replace('  labels:\n    kubernetes.io/service-name: web\n', ''),
      'invalidObject',
      0,
      /metadata.labels\["kubernetes.io\/service-name"\]: required/,
    ],
    [
      'a numeric label value',
      node('node-a', '192.0.2.1').replace('  name: node-a', '  name: node-a\n  labels: {rack: 7}'),
      'invalidObject',
      0,
      /metadata.labels.rack: label values are strings/,
    ],
    [
      'a bad node address',
      node('node-a', '192.0.2.300'),
      'invalidObject',
      0,
      /status.addresses\[0\].address: "192.0.2.300" is not an IP address/,
    ],
    [
      'a bad ingress address',
      SERVICE.replace('ip: 203.0.113.1', 'ip: 203.0.113'),
      'invalidObject',
      0,
      /status.loadBalancer.ingress\[0\].ip: "203.0.113" is not an IP address/,
    ],
  ])('rejects the whole file for %s', (_what, text, code, document, reason) => {
    const r = parseManifests('f.yaml', text);
    expect(r.usable).toBe(false);
    expect(r.problems).toContainEqual(
      expect.objectContaining({
        file: 'f.yaml',
        code,
        document,
        reason: expect.stringMatching(reason) as string,
      }),
    );
  });
});

describe('mergeContributions', () => {
  it('keeps the first definition in file name order and reports the others', () => {
    const a = parseManifests('a.yaml', svc('web', 80));
    const b = parseManifests('b.yaml', `${svc('api', 81)}---\n${svc('web', 82)}`);
    for (const order of [
      [b, a],
      [a, b],
    ]) {
      const merged = mergeContributions(
        order.map((p) => ({ file: p.objects[0]!.file, objects: p.objects })),
      );
      expect(merged.snapshot.Service.map((s) => s.spec?.ports?.[0]?.port)).toEqual([80, 81]);
      expect(merged.problems).toEqual([
        {
          file: 'b.yaml',
          document: 1,
          line: undefined,
          code: 'duplicate',
          reason:
            "Service 'default/web' is already defined in a.yaml (document 0); this definition is ignored",
        },
      ]);
    }
  });
});

describe('IPPool validation', () => {
  const pool = (spec: unknown) => ({
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'IPPool',
    metadata: { name: 'pool-a' },
    spec,
  });

  it('accepts CIDRs and ranges of either family and fills the defaults', () => {
    const p = parseIPPool(
      pool({
        addresses: [
          '192.0.2.0/28',
          '198.51.100.10-198.51.100.20',
          '2001:db8::/120',
          '2001:db8:1::5 - 2001:db8:1::9',
        ],
        serviceSelector: {
          matchLabels: { 'xlb.dev/tier': 'public' },
          matchExpressions: [
            { key: 'env', operator: 'In', values: ['prod', 'staging'] },
            { key: 'legacy', operator: 'DoesNotExist' },
          ],
        },
        namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'Exists' }] },
      }),
    );
    expect(p.spec).toMatchObject({ autoAssign: true, avoidBuggyIPs: false, disabled: false });
    expect(parseAddressBlock('192.0.2.0/28')).toEqual({
      family: 4,
      first: 0xc0000200n,
      last: 0xc000020fn,
    });
    expect(parseAddressBlock('198.51.100.10-198.51.100.20')).toMatchObject({ family: 4 });
    expect(
      parseAddressBlock('2001:db8::/120').last - parseAddressBlock('2001:db8::/120').first,
    ).toBe(255n);
  });

  function issues(obj: unknown): { path: string; message: string }[] {
    try {
      parseIPPool(obj);
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidResourceError);
      return [...(err as InvalidResourceError).issues];
    }
    throw new Error('expected the pool to be rejected');
  }

  it('names the field of every problem', () => {
    const found = issues(
      pool({
        addresses: [
          '192.0.2.0/28',
          '192.0.2.5/28',
          '198.51.100.20-198.51.100.10',
          '198.51.100.10-2001:db8::1',
          '192.0.2.0/33',
          'banana',
          '192.0.2.8/29',
        ],
        autoAssign: 'yes',
        disabled: false,
        serviceSelector: {
          matchLabels: { app: 7 },
          matchExpressions: [
            { key: 'env', operator: 'In' },
            { key: 'env', operator: 'Exists', values: ['x'] },
            { key: 'env', operator: 'Equals', values: ['x'] },
          ],
        },
        namespaceSelector: { matchLabel: { a: 'b' } },
        autoassign: true,
      }),
    );
    const byPath = Object.fromEntries(found.map((i) => [i.path, i.message]));
    expect(byPath).toMatchObject({
      'spec.addresses[1]':
        "'192.0.2.5/28' has host bits set: the block that contains it is 192.0.2.0/28",
      'spec.addresses[2]':
        "'198.51.100.20-198.51.100.10' starts after it ends: write the lower address first",
      'spec.addresses[3]': expect.stringMatching(/mixes IPv4 and IPv6/) as string,
      'spec.addresses[4]': "'192.0.2.0/33' has prefix length '33': IPv4 allows 0 to 32",
      'spec.addresses[5]': expect.stringMatching(
        /'banana' is not a CIDR like 192.0.2.0\/28 or a range/,
      ) as string,
      'spec.addresses[6]': "'192.0.2.8/29' overlaps spec.addresses[0] '192.0.2.0/28'",
      'spec.autoAssign': 'expected true or false (unquoted)',
      'spec.serviceSelector.matchLabels.app': expect.stringMatching(/strings/) as string,
      'spec.serviceSelector.matchExpressions[0].values': 'operator In needs at least one value',
      'spec.serviceSelector.matchExpressions[1].values': 'operator Exists takes no values',
      'spec.serviceSelector.matchExpressions[2].operator': expect.stringMatching(
        /In, NotIn, Exists, DoesNotExist/,
      ) as string,
      'spec.namespaceSelector': expect.stringMatching(/unknown field 'matchLabel'/) as string,
      spec: expect.stringMatching(/unknown field 'autoassign'/) as string,
    });
  });

  it('explains missing pieces and wrong identities', () => {
    expect(issues(pool(undefined))).toEqual([
      { path: 'spec', message: 'expected an IPPool spec (a map)' },
    ]);
    expect(issues(pool({ addresses: [] }))).toEqual([
      { path: 'spec.addresses', message: 'a pool needs at least one address block' },
    ]);
    expect(issues({ ...pool({ addresses: ['192.0.2.0/28'] }), apiVersion: 'xlb.dev/v1' })).toEqual([
      { path: 'apiVersion', message: "an IPPool's apiVersion is xlb.dev/v1alpha1" },
    ]);
    expect(() =>
      parseIPPool({ ...pool({ addresses: ['x'] }), metadata: { name: 'Pool A' } }),
    ).toThrow(
      /^IPPool 'Pool A' is invalid: metadata.name: "Pool A" is not a valid IPPool name.*; spec.addresses\[0\]: 'x' is not/,
    );
  });
});

describe('the example directory', () => {
  it('parses cleanly into one Service, its slice, two Nodes and a pool', async () => {
    const store = new ClusterStore();
    const source = new StandaloneSource({
      directory: join(projectRoot(), 'examples', 'standalone'),
      store,
      log: pino({ level: 'silent' }),
    });
    await source.start();
    try {
      expect(source.errors()).toEqual([]);
      const [web] = store.services();
      expect(web?.spec?.ports?.map((p) => [p.name, p.port, p.targetPort])).toEqual([
        ['http', 80, 8080],
        ['https', 443, 8443],
      ]);
      expect(web?.status?.loadBalancer?.ingress).toEqual([{ ip: '203.0.113.1' }]);
      const slices = store.endpointSlicesFor('default', 'web');
      expect(slices).toHaveLength(1);
      const endpoints = slices[0]!.endpoints;
      expect(endpoints).toHaveLength(3);
      expect(new Set(endpoints.map((e) => e.nodeName))).toEqual(new Set(['node-a', 'node-b']));
      expect(store.nodes().map((n) => n.status?.addresses?.[0]?.address)).toEqual([
        '192.0.2.11',
        '192.0.2.12',
      ]);
      expect(store.pools().map((p) => p.metadata.name)).toEqual(['default']);
    } finally {
      await source.stop();
    }
  });
});

describe('StandaloneSource', () => {
  let dir: string;
  let sources: StandaloneSource[];
  let logLines: Record<string, unknown>[];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xlb-standalone-'));
    sources = [];
    logLines = [];
  });

  afterEach(async () => {
    try {
      for (const s of sources) await s.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  function capture(): pino.Logger {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          logLines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    return pino({ level: 'debug', formatters: { level: (label) => ({ level: label }) } }, sink);
  }

  async function startSource(store = new ClusterStore()) {
    const source = new StandaloneSource({ directory: dir, store, log: capture() });
    sources.push(source);
    await source.start();
    return { source, store };
  }

  /** Resolves on the first notification after which `check` holds; fails after `ms`. */
  function storeUntil(store: ClusterStore, check: () => boolean, what: string, ms = 5000) {
    return until((cb) => store.subscribe(cb), check, what, ms);
  }

  function problemsUntil(
    source: StandaloneSource,
    check: (p: readonly ManifestProblem[]) => boolean,
    what: string,
    ms = 5000,
  ) {
    return until(
      (cb) => source.onProblems(cb),
      () => check(source.errors()),
      what,
      ms,
    );
  }

  function until(
    subscribe: (cb: () => void) => () => void,
    check: () => boolean,
    what: string,
    ms: number,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      const unsubscribe = subscribe(() => {
        if (!check()) return;
        clearTimeout(timer);
        unsubscribe();
        resolve();
      });
    });
  }

  /** Replaces a file the way editors do: write elsewhere, rename over. */
  async function replaceFile(name: string, text: string): Promise<void> {
    const tmp = join(dir, `.${name}.tmp`);
    await writeFile(tmp, text);
    await rename(tmp, join(dir, name));
  }

  const port = (store: ClusterStore, name = 'web') =>
    store.service('default', name)?.spec?.ports?.[0]?.port;

  it('holds the whole directory once start() resolves, ignoring files that are not manifests', async () => {
    await writeFile(join(dir, 'web.yaml'), `${SERVICE}---\n${SLICE}`);
    await writeFile(
      join(dir, 'nodes.yml'),
      `${node('node-a', '192.0.2.11')}---\n${node('node-b', '192.0.2.12')}`,
    );
    await writeFile(join(dir, 'pool.yaml'), POOL);
    await writeFile(join(dir, 'README.md'), 'not yaml: [');
    await writeFile(join(dir, '.web.yaml.swp'), 'junk');
    await writeFile(join(dir, '.#web.yaml'), 'kind: [');
    const { source, store } = await startSource();
    expect(source.errors()).toEqual([]);
    expect(store.services()).toHaveLength(1);
    expect(store.endpointSlicesFor('default', 'web')).toHaveLength(1);
    expect(store.nodes().map((n) => n.metadata?.name)).toEqual(['node-a', 'node-b']);
    expect(store.pool('default')?.spec.autoAssign).toBe(true);
    expect(logLines).toContainEqual(
      expect.objectContaining({ level: 'info', msg: 'standalone manifests loaded', files: 3 }),
    );
  });

  it('follows files being added, edited and deleted', async () => {
    await writeFile(join(dir, 'web.yaml'), svc('web', 80));
    const { store } = await startSource();
    expect(port(store)).toBe(80);

    let changed = storeUntil(store, () => store.node('node-a') !== undefined, 'the new node');
    await writeFile(join(dir, 'node.yaml'), node('node-a', '192.0.2.11'));
    await changed;

    changed = storeUntil(store, () => port(store) === 8080, 'the edited port');
    await writeFile(join(dir, 'web.yaml'), svc('web', 8080));
    await changed;

    changed = storeUntil(store, () => store.nodes().length === 0, 'the deleted node');
    await unlink(join(dir, 'node.yaml'));
    await changed;
    expect(port(store)).toBe(8080);
  });

  it('keeps the last good objects of a broken file, reports it, and recovers when fixed', async () => {
    await writeFile(join(dir, 'web.yaml'), `${SERVICE}---\n${SLICE}`);
    await writeFile(join(dir, 'node.yaml'), node('node-a', '192.0.2.11'));
    const { source, store } = await startSource();
    let notifications = 0;
    store.subscribe(() => notifications++);

    // A typo in the second document: the whole file is held back.
    const reported = problemsUntil(source, (p) => p.length > 0, 'the broken file to be reported');
    await replaceFile(
      'web.yaml',
      `${SERVICE.replace('port: 80', 'port: 8080')}---\n${SLICE.replace('IPv4', 'IPv5')}`,
    );
    await reported;
    expect(source.errors()).toEqual([
      {
        file: 'web.yaml',
        document: 1,
        line: 19,
        code: 'invalidObject',
        reason: "EndpointSlice 'web-1' is invalid: addressType: addressType is IPv4, IPv6 or FQDN",
      },
    ]);
    const warn = logLines.find((l) => l.level === 'warn');
    expect(warn).toMatchObject({
      file: 'web.yaml',
      document: 1,
      reason: expect.stringMatching(/addressType/) as string,
    });
    expect(port(store)).toBe(80); // the last good version, not the half-edited one
    expect(store.endpointSlicesFor('default', 'web')).toHaveLength(1);

    // The rest of the directory keeps working meanwhile.
    let changed = storeUntil(store, () => store.node('node-b') !== undefined, 'node-b');
    await writeFile(join(dir, 'node-b.yaml'), node('node-b', '192.0.2.12'));
    await changed;
    expect(port(store)).toBe(80);
    expect(source.errors()).toHaveLength(1);
    expect(notifications).toBe(1); // only node-b

    changed = storeUntil(store, () => port(store) === 8080, 'the fixed file');
    const cleared = problemsUntil(source, (p) => p.length === 0, 'the problem to clear');
    await replaceFile('web.yaml', `${SERVICE.replace('port: 80', 'port: 8080')}---\n${SLICE}`);
    await Promise.all([changed, cleared]);
    expect(logLines).toContainEqual(
      expect.objectContaining({
        level: 'info',
        file: 'web.yaml',
        msg: 'manifest problems resolved',
      }),
    );
  });

  it('drops the objects of a deleted file even if its last version was broken', async () => {
    await writeFile(join(dir, 'web.yaml'), svc('web', 80));
    const { source, store } = await startSource();
    const reported = problemsUntil(source, (p) => p.length === 1, 'the broken file');
    await replaceFile('web.yaml', 'kind: [');
    await reported;
    expect(port(store)).toBe(80);
    const gone = storeUntil(store, () => store.services().length === 0, 'the Service to go');
    const cleared = problemsUntil(source, (p) => p.length === 0, 'the problem to go');
    await unlink(join(dir, 'web.yaml'));
    await Promise.all([gone, cleared]);
  });

  it('reports a file that is broken from the start and uses the rest', async () => {
    await writeFile(join(dir, 'a.yaml'), `${svc('api', 81)}---\nkind: [`);
    await writeFile(join(dir, 'b.yaml'), svc('web', 80));
    const { source, store } = await startSource();
    expect(store.services().map((s) => s.metadata?.name)).toEqual(['web']);
    expect(source.errors()).toEqual([
      expect.objectContaining({ file: 'a.yaml', document: 1, line: 6, code: 'invalidYaml' }),
    ]);
  });

  it('keeps the first of two definitions in name order, and the second takes over when the first goes', async () => {
    await writeFile(join(dir, 'b.yaml'), svc('web', 82));
    await writeFile(join(dir, 'a.yaml'), svc('web', 81));
    const { source, store } = await startSource();
    expect(port(store)).toBe(81);
    expect(source.errors()).toEqual([
      expect.objectContaining({
        file: 'b.yaml',
        document: 0,
        code: 'duplicate',
        reason: expect.stringContaining(
          "Service 'default/web' is already defined in a.yaml",
        ) as string,
      }),
    ]);
    const changed = storeUntil(store, () => port(store) === 82, 'b.yaml to take over');
    await unlink(join(dir, 'a.yaml'));
    await changed;
    expect(source.errors()).toEqual([]);
  });

  it("skips unknown kinds and uses the file's other objects", async () => {
    await writeFile(
      join(dir, 'mixed.yaml'),
      `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\n${svc('web', 80)}`,
    );
    const { source, store } = await startSource();
    expect(port(store)).toBe(80);
    expect(source.errors()).toEqual([
      expect.objectContaining({ file: 'mixed.yaml', document: 0, code: 'unknownKind' }),
    ]);
    expect(logLines).toContainEqual(
      expect.objectContaining({ level: 'warn', file: 'mixed.yaml', code: 'unknownKind' }),
    );
  });

  it('reads multi-document and List files', async () => {
    const list = `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata: {name: a}
    spec: {type: LoadBalancer, ports: [{port: 1}]}
  - apiVersion: v1
    kind: Service
    metadata: {name: b}
    spec: {type: LoadBalancer, ports: [{port: 2}]}
`;
    await writeFile(join(dir, 'list.yaml'), list);
    await writeFile(join(dir, 'multi.yaml'), `${svc('c', 3)}---\n${svc('d', 4)}\n---\n`);
    const { source, store } = await startSource();
    expect(source.errors()).toEqual([]);
    expect(store.services().map((s) => s.spec?.ports?.[0]?.port)).toEqual([1, 2, 3, 4]);
  });

  it('keeps the objects when the directory disappears, and says so', async () => {
    await writeFile(join(dir, 'web.yaml'), svc('web', 80));
    const { source, store } = await startSource();
    const reported = problemsUntil(source, (p) => p.length > 0, 'the directory problem');
    await rm(dir, { recursive: true });
    await reported;
    expect(source.errors()[0]).toMatchObject({
      file: dir,
      document: undefined,
      code: 'unreadable',
      reason: expect.stringMatching(
        /cannot read the directory: ENOENT.*keeping the objects/,
      ) as string,
    });
    expect(port(store)).toBe(80);
  });

  it('fails to start on a missing directory, saying which', async () => {
    const source = new StandaloneSource({
      directory: join(dir, 'nope'),
      store: new ClusterStore(),
      log: capture(),
    });
    await expect(source.start()).rejects.toThrow(StandaloneSourceError);
    await expect(
      new StandaloneSource({
        directory: join(dir, 'nope'),
        store: new ClusterStore(),
        log: capture(),
      }).start(),
    ).rejects.toThrow(/nope/);
  });

  it('leaves no watcher or timer behind after stop(), even with a rescan pending', async () => {
    const watchers = () =>
      process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;
    /** Turns the event loop until `check` holds. */
    async function eventually(check: () => boolean, what: string): Promise<void> {
      const deadline = Date.now() + 5000;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    // The process-wide count of timers moves with vitest's own, so follow the
    // source's debounce timer (the only one of 60 s) through pass-through spies.
    const debounceMs = 60_000;
    const setSpy = vi.spyOn(globalThis, 'setTimeout');
    const clearSpy = vi.spyOn(globalThis, 'clearTimeout');
    const debounceTimers = () =>
      setSpy.mock.calls.flatMap((call, i) =>
        call[1] === debounceMs ? [setSpy.mock.results[i]?.value as unknown] : [],
      );
    try {
      const before = watchers();
      await writeFile(join(dir, 'web.yaml'), svc('web', 80));
      const store = new ClusterStore();
      const source = new StandaloneSource({ directory: dir, store, log: capture(), debounceMs });
      sources.push(source);
      await source.start();
      expect(watchers()).toBe(before + 1);
      await writeFile(join(dir, 'web.yaml'), svc('web', 81));
      await eventually(() => debounceTimers().length > 0, 'the debounce timer to be armed');
      await source.stop();
      const cleared = new Set(clearSpy.mock.calls.map((call) => call[0] as unknown));
      expect(debounceTimers().every((t) => cleared.has(t))).toBe(true);
      // libuv releases a closed handle a turn or two of the event loop later.
      await eventually(() => watchers() === before, 'the watcher to be released');
      expect(port(store)).toBe(80); // the pending rescan never ran
    } finally {
      setSpy.mockRestore();
      clearSpy.mockRestore();
    }
  });
});
