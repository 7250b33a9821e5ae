// FRR's bfdd inside a network namespace, without zebra (bfdd runs single-hop
// sessions given peer and local address without it), in the foreground so
// the test owns the process; vtysh talks to it through the vty socket in the
// same temp dir. bfdd drops privileges to user frr, so the dir belongs to frr.
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

/** One entry of `show bfd peers json`. */
export interface BfddPeer {
  peer: string;
  status: string;
  diagnostic: string;
  'remote-diagnostic': string;
  'remote-receive-interval': number;
  'remote-transmit-interval': number;
  'remote-detect-multiplier': number;
}

export class BfddProcess {
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

  /** Starts bfdd in ns with config and waits until vtysh answers. */
  static async start(ns: string, config: string): Promise<BfddProcess> {
    const { uid, gid } = frrIds();
    const dir = mkdtempSync(join(tmpdir(), 'xlbt-bfdd-'));
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'bfdd.conf'), config);
    chownSync(dir, uid, gid);
    chownSync(join(dir, 'bfdd.conf'), uid, gid);
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        '/usr/lib/frr/bfdd',
        '-f',
        join(dir, 'bfdd.conf'),
        '-i',
        join(dir, 'bfdd.pid'),
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
    const bfdd = new BfddProcess(dir, child);
    try {
      await until(
        () => `bfdd to answer vtysh (${bfdd.output.slice(-500)})`,
        () => {
          if (!bfdd.running) throw new Error(`bfdd exited: ${bfdd.output}`);
          return (
            spawnSync('vtysh', ['--vty_socket', dir, '-c', 'show bfd peers json']).status === 0
          );
        },
        10_000,
        50,
      );
      return bfdd;
    } catch (e) {
      await bfdd.stop();
      throw e;
    }
  }

  /** bfdd's view of one peer. */
  peer(address: string): BfddPeer | undefined {
    const r = spawnSync('vtysh', ['--vty_socket', this.dir, '-c', 'show bfd peers json'], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    if (r.status !== 0) throw new Error(`vtysh show bfd peers failed: ${r.stderr}${r.stdout}`);
    return (JSON.parse(r.stdout) as BfddPeer[]).find((p) => p.peer === address);
  }

  async stop(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
