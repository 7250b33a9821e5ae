// FRR's bgpd inside a network namespace, without zebra (-Z), in the
// foreground so the test owns the process; vtysh talks to it through the
// vty socket in the same temp dir. bgpd drops privileges to user frr, so
// the dir belongs to frr.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { until } from '../agent-harness.js';

function frrIds(): { uid: number; gid: number } {
  const id = (flag: string) =>
    Number(spawnSync('id', [flag, 'frr'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || !Number.isInteger(gid))
    throw new Error('user frr is missing: install frr');
  return { uid, gid };
}

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

  /** Starts bgpd in ns with config and waits until vtysh answers. */
  static async start(ns: string, config: string): Promise<FrrProcess> {
    const { uid, gid } = frrIds();
    const dir = mkdtempSync(join(tmpdir(), 'xlbt-frr-'));
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'bgpd.conf'), config);
    chownSync(dir, uid, gid);
    chownSync(join(dir, 'bgpd.conf'), uid, gid);
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        '/usr/lib/frr/bgpd',
        '-Z',
        '-f',
        join(dir, 'bgpd.conf'),
        '-i',
        join(dir, 'bgpd.pid'),
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
        () => `bgpd to answer vtysh (${frr.output.slice(-500)})`,
        () => {
          if (!frr.running) throw new Error(`bgpd exited: ${frr.output}`);
          return (
            spawnSync('vtysh', ['--vty_socket', dir, '-c', 'show bgp summary json']).status === 0
          );
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

  async stop(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
