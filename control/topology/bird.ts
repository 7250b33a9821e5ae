// BIRD 2 inside a network namespace: `bird -f` with a config written to a
// temp dir, controlled with birdc over its socket in the same dir.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { until } from './agent-harness.js';

export class BirdProcess {
  private stderr = '';
  private readonly exited: Promise<void>;

  private constructor(
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    child.stdout!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get socket(): string {
    return join(this.dir, 'bird.ctl');
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts BIRD in ns with config and waits until birdc answers. */
  static async start(ns: string, config: string): Promise<BirdProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'xlbt-bird-'));
    writeFileSync(join(dir, 'bird.conf'), config);
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'bird',
        '-f',
        '-c',
        join(dir, 'bird.conf'),
        '-s',
        join(dir, 'bird.ctl'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const bird = new BirdProcess(dir, child);
    try {
      await until(
        () => `BIRD to answer on its control socket (${bird.stderr.trim()})`,
        () => {
          if (!bird.running) throw new Error(`BIRD exited: ${bird.stderr}`);
          return bird.tryBirdc('show status')?.includes('Daemon is up');
        },
        10_000,
        50,
      );
      return bird;
    } catch (e) {
      await bird.stop();
      throw e;
    }
  }

  private tryBirdc(command: string): string | undefined {
    const r = spawnSync('birdc', ['-s', this.socket, ...command.split(' ')], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    return r.status === 0 ? r.stdout : undefined;
  }

  /** Runs a birdc command; returns its output also when BIRD answers with an error (exit 1). */
  birdcOutput(command: string): string {
    const r = spawnSync('birdc', ['-s', this.socket, ...command.split(' ')], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    if (r.error) throw r.error;
    return `${r.stdout}${r.stderr}`;
  }

  /** Runs a birdc command; throws with BIRD's output if birdc fails. */
  birdc(command: string): string {
    const r = spawnSync('birdc', ['-s', this.socket, ...command.split(' ')], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    if (r.status !== 0) throw new Error(`birdc ${command} failed: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** The state of a BGP protocol as `show protocols` prints it ('Established', 'Active', ...). */
  bgpState(protocol: string): string | undefined {
    const line = this.birdc(`show protocols ${protocol}`)
      .split('\n')
      .find((l) => l.startsWith(protocol + ' '));
    return line?.trim().split(/\s+/)[5];
  }

  /** Kills BIRD, waits for it to exit, removes its dir. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
