// Helpers for agent tests: captured JSON log lines, polling, and plain HTTP
// GETs against the agent's endpoints.
import { rmSync } from 'node:fs';
import { Writable } from 'node:stream';

import { pino, type Logger } from 'pino';

export type LogLine = Record<string, unknown> & { level: string; msg: string; component?: string };

export class LogCapture {
  readonly lines: LogLine[] = [];
  private readonly root: Logger;

  constructor(level = 'debug') {
    const sink = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        for (const line of chunk.toString().split('\n'))
          if (line !== '') this.lines.push(JSON.parse(line) as LogLine);
        done();
      },
    });
    this.root = pino({ level, formatters: { level: (label) => ({ level: label }) } }, sink);
  }

  readonly logger = (component: string): Logger => this.root.child({ component });

  of(component: string): LogLine[] {
    return this.lines.filter((l) => l.component === component);
  }
}

/** Polls `check` until it returns something other than undefined/false, or fails saying what it waited for. */
export async function until<T>(
  what: string | (() => string),
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const r = await check();
      if (r !== undefined && r !== false) return r;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}` +
          (lastError ? ` (last error: ${(lastError as Error).message})` : ''),
      );
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

/** The value of one sample in Prometheus text, e.g. metric('xlb_frontends') or with labels. */
export function metricValue(text: string, sample: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return undefined;
}

/** A named cleanup step; undefined steps (nothing was made) are skipped. */
export type CleanupStep = readonly [what: string, run: () => unknown] | undefined;

/**
 * Runs cleanup steps in order, each also when one before failed, and then
 * throws once, naming every step that failed.
 */
export async function runCleanup(steps: readonly CleanupStep[]): Promise<void> {
  const failures: string[] = [];
  for (const step of steps) {
    if (step === undefined) continue;
    try {
      await step[1]();
    } catch (e) {
      failures.push(`${step[0]}: ${(e as Error).message}`);
    }
  }
  if (failures.length > 0) throw new Error(`cleanup failed:\n${failures.join('\n')}`);
}

/** Steps that remove an agent's pin directory and the ones it stages upgrades in. */
export function pinCleanup(pinDir: string): CleanupStep[] {
  if (pinDir === '') return [];
  return [pinDir, `${pinDir}-next`, `${pinDir}-old`].map(
    (d) => [`removing ${d}`, () => rmSync(d, { recursive: true, force: true })] as const,
  );
}
