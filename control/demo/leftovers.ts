// What a demo leaves behind if it is killed outright (SIGKILL, a crash, a
// power cut): namespaces, processes in them, agents, BPF pins and its temp
// dir. Each demo records itself in a state file while it runs; the next demo
// refuses while a recorded demo is still alive, and otherwise removes every
// trace of earlier ones before it builds anything.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { BPFFS } from '../system/bpffs.js';

/** Every namespace and pin of the demo starts with this, so leftovers are found by name. */
export const DEMO_PREFIX = 'xlbdemo';
/** One JSON file per running demo, named by its pid. */
export const STATE_DIR = '/run/xlb-demo';

export interface DemoRecord {
  pid: number;
  /** The topology's tag, once the namespaces exist. */
  tag?: string;
  tempDir?: string;
}

export class DemoRunningError extends Error {
  constructor(readonly pid: number) {
    super(
      `another xlb demo is running (pid ${pid}): wait for it to finish, or stop it with ` +
        `Ctrl-C in its terminal or \`kill -INT ${pid}\``,
    );
    this.name = 'DemoRunningError';
  }
}

const statePath = (pid: number): string => join(STATE_DIR, `${pid}.json`);

/** Records this demo (call again as it learns more); removed by forget(). */
export function record(r: DemoRecord): void {
  mkdirSync(STATE_DIR, { recursive: true });
  writeFileSync(statePath(r.pid), JSON.stringify(r));
}

export function forget(pid: number): void {
  rmSync(statePath(pid), { force: true });
}

function records(): DemoRecord[] {
  if (!existsSync(STATE_DIR)) return [];
  const out: DemoRecord[] = [];
  for (const f of readdirSync(STATE_DIR)) {
    try {
      out.push(JSON.parse(readFileSync(join(STATE_DIR, f), 'utf8')) as DemoRecord);
    } catch {
      rmSync(join(STATE_DIR, f), { force: true });
    }
  }
  return out;
}

/** Whether pid is a live `xlb demo` (not a recycled pid of something else). */
function demoAlive(pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.includes('demo');
  } catch {
    return false;
  }
}

function demoNamespaces(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`${DEMO_PREFIX}-`));
}

function killPids(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** Processes of earlier demos: in their namespaces, or agents naming one on their command line. */
function leftoverPids(namespaces: readonly string[]): number[] {
  const pids = new Set<number>();
  for (const ns of namespaces) {
    const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
    for (const p of r.stdout.split('\n')) if (/^\d+$/.test(p.trim())) pids.add(Number(p));
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes('\0agent\0') && cmdline.includes(`\0${DEMO_PREFIX}-`))
        pids.add(Number(entry));
    } catch {
      // Exited meanwhile.
    }
  }
  return [...pids];
}

/**
 * Refuses (DemoRunningError) while another demo runs; otherwise removes what
 * earlier demos left and returns one line per kind of thing removed.
 */
export function clearLeftovers(): string[] {
  const previous = records().filter((r) => r.pid !== process.pid);
  const alive = previous.find((r) => demoAlive(r.pid));
  if (alive) throw new DemoRunningError(alive.pid);

  const removed: string[] = [];
  const namespaces = demoNamespaces();
  const pids = leftoverPids(namespaces);
  if (pids.length > 0) {
    killPids(pids);
    removed.push(`${pids.length} process(es)`);
  }
  for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  if (namespaces.length > 0) removed.push(`${namespaces.length} network namespace(s)`);
  const pins = existsSync(BPFFS)
    ? readdirSync(BPFFS).filter((p) => p.startsWith(`${DEMO_PREFIX}-`))
    : [];
  for (const p of pins) rmSync(join(BPFFS, p), { recursive: true, force: true });
  if (pins.length > 0) removed.push(`${pins.length} BPF pin dir(s)`);
  for (const r of previous) {
    if (r.tempDir && existsSync(r.tempDir)) {
      rmSync(r.tempDir, { recursive: true, force: true });
      removed.push(`temp dir ${r.tempDir}`);
    }
    forget(r.pid);
  }
  return removed;
}
