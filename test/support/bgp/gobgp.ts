// GoBGP (gobgpd) inside a network namespace, with its gRPC API on the
// namespace's own loopback; the gobgp CLI runs in the same namespace.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { until } from '../../../control/topology/agent-harness.js';

const API_PORT = 50051;

/** One path of `gobgp global rib -j` (or of `gobgp monitor global rib -j`). */
export interface GobgpPath {
  nlri: { prefix: string };
  attrs: { type: number; [k: string]: unknown }[];
  /** Set while the neighbor that sent it restarts (graceful restart). */
  stale?: boolean;
  age?: number;
  best?: boolean;
  'neighbor-ip'?: string;
}

export class GobgpProcess {
  private output = '';
  private readonly exited: Promise<void>;

  private constructor(
    readonly ns: string,
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** gobgpd's own log so far, for failure messages. */
  get log(): string {
    return this.output;
  }

  /** Starts gobgpd in ns with a TOML config and waits until its API answers. */
  static async start(ns: string, tomlConfig: string): Promise<GobgpProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'xlbt-gobgp-'));
    writeFileSync(join(dir, 'gobgpd.toml'), tomlConfig);
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        // Its own UTS namespace and host name: GoBGP puts the host name in its
        // OPEN (FQDN capability), and captures must not depend on the machine.
        'unshare',
        '--uts',
        'sh',
        '-c',
        'hostname xlbt-gobgp && exec "$0" "$@"',
        'gobgpd',
        '-f',
        join(dir, 'gobgpd.toml'),
        '-t',
        'toml',
        '--api-hosts',
        `127.0.0.1:${API_PORT}`,
        '--log-plain',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const gobgp = new GobgpProcess(ns, dir, child);
    try {
      await until(
        () => `gobgpd to answer on its API (${gobgp.output.slice(-500)})`,
        () => {
          if (!gobgp.running) throw new Error(`gobgpd exited: ${gobgp.output}`);
          return gobgp.tryCli(['global']) !== undefined;
        },
        10_000,
        50,
      );
      return gobgp;
    } catch (e) {
      await gobgp.stop();
      throw e;
    }
  }

  private tryCli(args: string[]): string | undefined {
    const r = spawnSync(
      'ip',
      ['netns', 'exec', this.ns, 'gobgp', '-p', String(API_PORT), ...args],
      { encoding: 'utf8', timeout: 10_000 },
    );
    return r.status === 0 ? r.stdout : undefined;
  }

  /** Runs the gobgp CLI; throws with its output if it fails. */
  cli(...args: string[]): string {
    const r = spawnSync(
      'ip',
      ['netns', 'exec', this.ns, 'gobgp', '-p', String(API_PORT), ...args],
      { encoding: 'utf8', timeout: 10_000 },
    );
    if (r.status !== 0) throw new Error(`gobgp ${args.join(' ')} failed: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** Whether GoBGP's session with neighbor is Established. */
  established(neighbor: string): boolean {
    return /BGP state = established/i.test(this.cli('neighbor', neighbor));
  }

  /**
   * GoBGP's multipath set per prefix. `global rib` marks only one path best
   * even with use-multiple-paths; the multipath selection (what GoBGP would
   * hand to zebra) shows in the best-path monitor, whose --current dump is
   * one JSON line with every destination's multipath set. GoBGP prints no
   * line while no destination has a best path: after waitMs without one,
   * this answers {}.
   */
  async multipathBest(waitMs = 2000): Promise<Record<string, GobgpPath[]>> {
    const child = spawn(
      'ip',
      [
        ...['netns', 'exec', this.ns, 'gobgp', '-p', String(API_PORT)],
        ...['monitor', 'global', 'rib', '--current', '-j'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let out = '';
    let err = '';
    try {
      const line = await new Promise<string | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), waitMs);
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const end = out.indexOf('\n');
          if (end >= 0) {
            clearTimeout(timer);
            resolve(out.slice(0, end));
          }
        });
        child.once('exit', () => {
          clearTimeout(timer);
          resolve(out === '' ? undefined : out);
        });
      });
      if (line === undefined) {
        if (err !== '') throw new Error(`gobgp monitor global rib failed: ${err}`);
        return {};
      }
      const byPrefix: Record<string, GobgpPath[]> = {};
      for (const p of (JSON.parse(line) as GobgpPath[] | null) ?? [])
        (byPrefix[p.nlri.prefix] ??= []).push(p);
      return byPrefix;
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
  }

  /** GoBGP's paths for prefix in its global RIB (JSON), or undefined when it has none. */
  rib(family: 'ipv4' | 'ipv6', prefix: string): GobgpPath[] | undefined {
    const out = this.cli('global', 'rib', '-a', family, prefix, '-j').trim();
    if (out === '' || out === 'null') return undefined;
    const parsed = JSON.parse(out) as Record<string, GobgpPath[]> | null;
    const paths = parsed?.[prefix];
    return paths?.length ? paths : undefined;
  }

  async stop(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
