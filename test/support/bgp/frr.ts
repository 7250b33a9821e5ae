// An FRR daemon (bgpd, or bfdd) inside a network namespace, without zebra,
// in the foreground so the test owns the process; vtysh talks to it through
// the vty socket in the same temp dir. FRR daemons drop privileges to user
// frr, so the dir belongs to frr.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { until } from '../../../control/topology/agent-harness.js';

function frrIds(): { uid: number; gid: number } {
  const id = (flag: string) =>
    Number(spawnSync('id', [flag, 'frr'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || !Number.isInteger(gid))
    throw new Error('user frr is missing: install frr');
  return { uid, gid };
}

/** One path of `show bgp <family> unicast <prefix> json` (the fields tests read). */
export interface FrrPath {
  valid?: boolean;
  /** Kept from a neighbor that restarts (graceful restart). */
  stale?: boolean;
  metric?: number;
  [field: string]: unknown;
}

export interface FrrDaemon {
  /** The program in /usr/lib/frr. */
  name: string;
  args: readonly string[];
  /** A vtysh command that succeeds once the daemon serves. */
  ready: string;
}

/** bgpd without zebra. */
export const BGPD: FrrDaemon = { name: 'bgpd', args: ['-Z'], ready: 'show bgp summary json' };
/** bfdd: single-hop sessions given peer and local address need no zebra. */
export const BFDD: FrrDaemon = { name: 'bfdd', args: [], ready: 'show bfd peers json' };

export class FrrProcess {
  private output = '';
  private readonly exited: Promise<void>;

  private constructor(
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get log(): string {
    return this.output;
  }

  /**
   * Starts the daemon (bgpd by default) in ns with config and waits until
   * vtysh answers `ready` (a command the daemon serves).
   */
  static async start(ns: string, config: string, daemon: FrrDaemon = BGPD): Promise<FrrProcess> {
    const { uid, gid } = frrIds();
    const { name } = daemon;
    const dir = mkdtempSync(join(tmpdir(), `xlbt-${name}-`));
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, `${name}.conf`), config);
    chownSync(dir, uid, gid);
    chownSync(join(dir, `${name}.conf`), uid, gid);
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        `/usr/lib/frr/${name}`,
        ...daemon.args,
        '-f',
        join(dir, `${name}.conf`),
        '-i',
        join(dir, `${name}.pid`),
        '--vty_socket',
        dir,
        '-u',
        'frr',
        '-g',
        'frr',
        '--log',
        'stdout',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const frr = new FrrProcess(dir, child);
    try {
      await until(
        () => `${name} to answer vtysh (${frr.output.slice(-500)})`,
        () => {
          if (!frr.running) throw new Error(`${name} exited: ${frr.output}`);
          return spawnSync('vtysh', ['--vty_socket', dir, '-c', daemon.ready]).status === 0;
        },
        10_000,
        50,
      );
      return frr;
    } catch (e) {
      await frr.stop();
      throw e;
    }
  }

  /** A vtysh command's JSON answer. */
  json<T>(command: string): T {
    const r = spawnSync('vtysh', ['--vty_socket', this.dir, '-c', command], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    if (r.status !== 0) throw new Error(`vtysh -c '${command}' failed: ${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout) as T;
  }

  /** bgpd's state of the session with neighbor ('Established', 'Active', ...). */
  bgpState(neighbor: string): string | undefined {
    return this.json<Record<string, { bgpState?: string }>>(`show bgp neighbors ${neighbor} json`)[
      neighbor
    ]?.bgpState;
  }

  /** bgpd's best path for prefix, or undefined when it has none. */
  route(family: 'ipv4' | 'ipv6', prefix: string): FrrPath | undefined {
    const r = this.json<{ paths?: FrrPath[] }>(`show bgp ${family} unicast ${prefix} json`);
    return r.paths?.length ? r.paths[0] : undefined;
  }

  async stop(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
