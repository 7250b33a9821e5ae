// An FRR daemon (bgpd, bfdd, or zebra) inside a network namespace, in the
// foreground so the test owns the process; vtysh talks to it through the vty
// socket in the same temp dir. FRR daemons drop privileges to user frr, so
// the dir belongs to frr. bgpd runs without zebra (BGPD), or beside a zebra
// in the same dir (ZEBRA, then BGPD_WITH_ZEBRA), talking to it through the
// zserv socket there, so zebra installs its routes in the namespace's kernel.
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
  /** Serves or uses zebra's zserv socket in the daemon's dir. */
  zserv?: boolean;
}

/** bgpd without zebra. */
export const BGPD: FrrDaemon = { name: 'bgpd', args: ['-Z'], ready: 'show bgp summary json' };
/** bfdd: single-hop sessions given peer and local address need no zebra. */
export const BFDD: FrrDaemon = { name: 'bfdd', args: [], ready: 'show bfd peers json' };
/** zebra: serves the zserv socket and installs its clients' routes in the kernel. */
export const ZEBRA: FrrDaemon = {
  name: 'zebra',
  args: [],
  ready: 'show ip route json',
  zserv: true,
};
/** bgpd as zebra's client: start it beside a ZEBRA process. */
export const BGPD_WITH_ZEBRA: FrrDaemon = {
  name: 'bgpd',
  args: [],
  ready: 'show bgp summary json',
  zserv: true,
};

/** One route of zebra's `show ip route <prefix> json` (the fields tests read). */
export interface ZebraRoute {
  protocol?: string;
  selected?: boolean;
  installed?: boolean;
  nexthops?: { ip?: string; interfaceName?: string; active?: boolean; fib?: boolean }[];
  [field: string]: unknown;
}

export class FrrProcess {
  private output = '';
  private readonly exited: Promise<void>;

  private constructor(
    readonly dir: string,
    private readonly child: ChildProcess,
    /** Whether stop() removes dir (false for a daemon started beside another). */
    private readonly ownsDir: boolean,
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
   * vtysh answers `ready` (a command the daemon serves). Beside another
   * daemon, it shares that one's dir (vty and zserv sockets), so one vtysh
   * reaches both; stop it before the other, which removes the dir.
   */
  static async start(
    ns: string,
    config: string,
    daemon: FrrDaemon = BGPD,
    beside?: FrrProcess,
  ): Promise<FrrProcess> {
    const { uid, gid } = frrIds();
    const { name } = daemon;
    const dir = beside?.dir ?? mkdtempSync(join(tmpdir(), `xlbt-${name}-`));
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
        ...(daemon.zserv ? ['-z', join(dir, 'zserv.api')] : []),
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
    const frr = new FrrProcess(dir, child, beside === undefined);
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

  /** All of bgpd's paths for prefix (empty when it has none). */
  paths(family: 'ipv4' | 'ipv6', prefix: string): FrrPath[] {
    return (
      this.json<{ paths?: FrrPath[] }>(`show bgp ${family} unicast ${prefix} json`).paths ?? []
    );
  }

  /** zebra's routes for prefix (`show ip[v6] route <prefix> json`; needs ZEBRA). */
  zebraRoutes(prefix: string): ZebraRoute[] {
    const family = prefix.includes(':') ? 'ipv6' : 'ip';
    const r = this.json<Record<string, ZebraRoute[] | undefined>>(
      `show ${family} route ${prefix} json`,
    );
    return r[prefix] ?? [];
  }

  async stop(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
