// Thin runner for iproute2. Network namespaces, veths and addresses are made
// with the same tool an operator would use, so what tests build is what
// `ip` shows.
import { execFileSync, spawnSync } from 'node:child_process';

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly status: number | null,
    readonly stderr: string,
  ) {
    super(`\`${command}\` failed (exit ${status ?? 'signal'}): ${stderr.trim() || '(no output)'}`);
    this.name = 'CommandError';
  }
}

/** Runs a program, returns stdout; throws CommandError with stderr on failure. */
export function run(program: string, args: readonly string[], input?: string): string {
  const r = spawnSync(program, args, { encoding: 'utf8', input, timeout: 30_000 });
  if (r.error) throw new CommandError([program, ...args].join(' '), null, r.error.message);
  if (r.status !== 0) throw new CommandError([program, ...args].join(' '), r.status, r.stderr);
  return r.stdout;
}

export function ip(...args: string[]): string {
  return run('ip', args);
}

/** `ip netns exec NS program args...` */
export function inNs(ns: string, program: string, ...args: string[]): string {
  return run('ip', ['netns', 'exec', ns, program, ...args]);
}

/** Like inNs but never throws: for cleanup paths and probes. */
export function tryInNs(ns: string, program: string, ...args: string[]): boolean {
  const r = spawnSync('ip', ['netns', 'exec', ns, program, ...args], {
    stdio: 'ignore',
    timeout: 30_000,
  });
  return r.status === 0;
}

export function netnsExists(name: string): boolean {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .some((line) => line.split(' ')[0] === name);
}
