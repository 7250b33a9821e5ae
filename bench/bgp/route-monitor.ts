// The router's kernel routing table as it changes: `ip monitor route` in the
// router namespace, each line stamped when it arrives. BIRD's kernel protocol
// writes what it learned over BGP there, so a route in this stream is a route
// the router forwards with, not only one BIRD knows.
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import readline from 'node:readline';

export interface RouteEvent {
  /** performance.now() when the line arrived. */
  at: number;
  kind: 'add' | 'del';
  /** The destination as `ip` prints it: an address for a /32, else a prefix. */
  dst: string;
}

/** One line of `ip monitor route`, or undefined for lines that are not routes. */
export function parseRouteLine(line: string, at: number): RouteEvent | undefined {
  const words = line.trim().split(/\s+/);
  const deleted = words[0] === 'Deleted';
  const rest = deleted ? words.slice(1) : words;
  // Skip the table type words ip prints before the destination (e.g. "unicast").
  const dst = rest[0] === 'unicast' ? rest[1] : rest[0];
  if (dst === undefined || !/^[0-9a-f.:/]+$/i.test(dst)) return undefined;
  return { at, kind: deleted ? 'del' : 'add', dst };
}

export class RouteMonitor {
  readonly events: RouteEvent[] = [];
  private stderr = '';

  private constructor(private readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const event = parseRouteLine(line, performance.now());
      if (event) this.events.push(event);
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  /** Starts `ip -n NS monitor route`; it is listening once this returns. */
  static async start(ns: string): Promise<RouteMonitor> {
    const child = spawn('ip', ['-n', ns, 'monitor', 'route'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const monitor = new RouteMonitor(child);
    // `ip monitor` opens its netlink socket before it prints anything; give
    // it a moment, then make sure it did not fail outright.
    await new Promise((r) => setTimeout(r, 200));
    if (!monitor.running) throw new Error(`ip monitor route in ${ns} exited: ${monitor.stderr}`);
    return monitor;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first event of that kind for dst that arrived at or after `since`. */
  async next(
    dst: string,
    kind: RouteEvent['kind'],
    since: number,
    timeoutMs: number,
  ): Promise<RouteEvent> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = this.events.find((e) => e.at >= since && e.dst === dst && e.kind === kind);
      if (found) return found;
      if (!this.running) throw new Error(`ip monitor route exited: ${this.stderr}`);
      if (performance.now() > deadline)
        throw new Error(`the router did not ${kind} a route to ${dst} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  stop(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}
