// Where the demo's agents read the cluster from, and how the demo changes it:
// a manifest directory they all watch (standalone, the default), or the API
// server double on 127.0.0.1 with the real kubectl writing to it (--kube).
// Both take the same objects (cluster.ts) and the same changes (a pod's
// endpoint gone, a node gone).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { parseAllDocuments, stringify } from 'yaml';

import { ApiServer, type KubeObject } from '../apiserver-double/index.js';
import { projectRoot } from '../paths.js';
import {
  infrastructureObjects,
  NAMESPACE,
  nodeName,
  serviceObject,
  SERVICES,
  sliceObject,
  STANDALONE_VIPS,
  type PlacedPod,
} from './cluster.js';

export type SourceMode = 'standalone' | 'kubernetes';

export const KUBECTL = join(projectRoot(), '.setup', 'kube', 'kubectl');
const CRD_FILES = ['ippool.yaml', 'bgppeer.yaml', 'bgpadvertisement.yaml'];
const LEASE = 'xlb-leader';

export interface ClusterSource {
  readonly mode: SourceMode;
  /** The flags that point node i's agent at this source. */
  agentArgs(i: number): string[];
  /** Publishes the whole cluster: pool, nodes, peers, Services, EndpointSlices. */
  publish(pods: readonly PlacedPod[]): Promise<void>;
  /** The endpoints of every Service become exactly `pods`. */
  setEndpoints(pods: readonly PlacedPod[]): Promise<void>;
  /** The node is gone from the cluster (Kubernetes: its Node object is deleted). */
  removeNode(i: number): Promise<void>;
  /** Each Service's address as the cluster says (standalone: the manifests; Kubernetes: status). */
  serviceAddresses(): Promise<Map<string, string | undefined>>;
  /** How a user looks at the source while the demo holds. */
  hints(): string[];
  close(): Promise<void>;
}

const yamlDocs = (objects: readonly KubeObject[]): string =>
  objects.map((o) => stringify(o)).join('---\n');

/** One directory, watched by every agent; each agent picks its BGPPeer by its node's label. */
export class ManifestSource implements ClusterSource {
  readonly mode = 'standalone';
  readonly dir: string;

  constructor(tempDir: string) {
    this.dir = join(tempDir, 'manifests');
    mkdirSync(this.dir);
  }

  agentArgs(): string[] {
    return ['--manifests', this.dir];
  }

  publish(pods: readonly PlacedPod[]): Promise<void> {
    this.write('cluster.yaml', infrastructureObjects());
    this.write(
      'services.yaml',
      SERVICES.map((s) => serviceObject(s, STANDALONE_VIPS[s.name])),
    );
    return this.setEndpoints(pods);
  }

  setEndpoints(pods: readonly PlacedPod[]): Promise<void> {
    this.write(
      'endpointslices.yaml',
      SERVICES.map((s) => sliceObject(s.name, pods)),
    );
    return Promise.resolve();
  }

  removeNode(i: number): Promise<void> {
    const name = nodeName(i);
    const kept = infrastructureObjects().filter(
      (o) => !(o.kind === 'Node' && o.metadata.name === name),
    );
    this.write('cluster.yaml', kept);
    return Promise.resolve();
  }

  serviceAddresses(): Promise<Map<string, string | undefined>> {
    const out = new Map<string, string | undefined>();
    const docs = parseAllDocuments(readFileSync(join(this.dir, 'services.yaml'), 'utf8'));
    for (const doc of docs) {
      const o = doc.toJS() as KubeObject;
      const status = o.status as { loadBalancer?: { ingress?: Array<{ ip?: string }> } };
      out.set(o.metadata.name ?? '', status?.loadBalancer?.ingress?.[0]?.ip);
    }
    return Promise.resolve(out);
  }

  hints(): string[] {
    return [`the agents' manifests (edit them and watch): ${this.dir}`];
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  // Write then rename: the agents' watcher never reads half a file.
  private write(file: string, objects: readonly KubeObject[]): void {
    const tmp = join(this.dir, `.${file}.tmp`);
    writeFileSync(tmp, yamlDocs(objects));
    renameSync(tmp, join(this.dir, file));
  }
}

export interface KubectlResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The API server double, written to with the real kubectl as an operator would. */
export class KubernetesSource implements ClusterSource {
  readonly mode = 'kubernetes';
  readonly kubeconfig: string;
  private readonly home: string;

  private constructor(
    private readonly server: ApiServer,
    tempDir: string,
  ) {
    this.kubeconfig = join(tempDir, 'kubeconfig');
    this.home = join(tempDir, 'kube-home');
    mkdirSync(this.home);
    writeFileSync(this.kubeconfig, kubeconfigYaml(server.url), { mode: 0o600 });
  }

  static async start(tempDir: string): Promise<KubernetesSource> {
    const server = await ApiServer.start({ port: 0 });
    return new KubernetesSource(server, tempDir);
  }

  get url(): string {
    return this.server.url;
  }

  agentArgs(i: number): string[] {
    return [
      '--kubeconfig',
      this.kubeconfig,
      '--lease-namespace',
      NAMESPACE,
      '--lease-name',
      LEASE,
      '--identity',
      `xlb-${nodeName(i)}`,
    ];
  }

  async publish(pods: readonly PlacedPod[]): Promise<void> {
    const crds = CRD_FILES.map((f) =>
      readFileSync(join(projectRoot(), 'charts', 'xlb', 'crds', f), 'utf8'),
    );
    await this.apply(crds.join('---\n'));
    await this.kubectlOk(['create', 'namespace', NAMESPACE]);
    await this.apply(yamlDocs(infrastructureObjects()));
    // No addresses: the leader allocates them from the pool and writes status.
    await this.apply(yamlDocs(SERVICES.map((s) => serviceObject(s))));
    await this.setEndpoints(pods);
  }

  setEndpoints(pods: readonly PlacedPod[]): Promise<void> {
    return this.apply(yamlDocs(SERVICES.map((s) => sliceObject(s.name, pods))));
  }

  async removeNode(i: number): Promise<void> {
    await this.kubectlOk(['delete', 'node', nodeName(i), '--wait=false']);
  }

  serviceAddresses(): Promise<Map<string, string | undefined>> {
    const out = new Map<string, string | undefined>();
    for (const s of SERVICES) {
      const status = this.server.get('Service', s.name, NAMESPACE)?.status as
        { loadBalancer?: { ingress?: Array<{ ip?: string }> } } | undefined;
      out.set(s.name, status?.loadBalancer?.ingress?.[0]?.ip);
    }
    return Promise.resolve(out);
  }

  hints(): string[] {
    const kubectl = existsSync(KUBECTL) ? KUBECTL : 'kubectl';
    return [
      `the API server: ${this.server.url}`,
      `${kubectl} --kubeconfig ${this.kubeconfig} get svc -n ${NAMESPACE}`,
      `${kubectl} --kubeconfig ${this.kubeconfig} get endpointslices,ippools,bgppeers -A`,
    ];
  }

  /** Runs the real kubectl against the server (asynchronously: the server runs in this process). */
  kubectl(args: readonly string[], input?: string): Promise<KubectlResult> {
    return new Promise((resolve) => {
      const child = execFile(
        KUBECTL,
        [...args, '--kubeconfig', this.kubeconfig, '--cache-dir', join(this.home, 'cache')],
        {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.home },
          timeout: 30_000,
          maxBuffer: 16 * 1024 * 1024,
        },
        (err, stdout, stderr) => {
          const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
          resolve({ status: code, stdout, stderr });
        },
      );
      child.stdin?.end(input ?? '');
    });
  }

  private async kubectlOk(args: readonly string[], input?: string): Promise<string> {
    const r = await this.kubectl(args, input);
    if (r.status !== 0)
      throw new Error(`kubectl ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  private async apply(yaml: string): Promise<void> {
    await this.kubectlOk(['apply', '-f', '-'], yaml);
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

/** A kubeconfig for the plain-HTTP double (no credentials, no TLS). */
export function kubeconfigYaml(server: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'xlb-demo', cluster: { server, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'xlb-demo', user: {} }],
    contexts: [
      {
        name: 'xlb-demo',
        context: { cluster: 'xlb-demo', user: 'xlb-demo', namespace: NAMESPACE },
      },
    ],
    'current-context': 'xlb-demo',
  });
}
