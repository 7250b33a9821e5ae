// The real `xlb agent` as a child process (node dist/control/cli/main.js):
// its JSON log lines as they come, its endpoints, and its exit.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import readline from 'node:readline';

import { distScript } from '../paths.js';
import { get, until, type LogLine } from './agent-harness.js';

const CLI = distScript('control/cli/main.js');

/** Where one node's agent runs in the topology, and what it reads. */
export interface NodeAgentPlacement {
  nodeName: string;
  /** The node's network namespace (its uplink is eth0 there). */
  netns: string;
  pinDir: string;
  /** Standalone mode's manifest directory; leave out for Kubernetes mode. */
  manifests?: string;
  /** Default debug: tests read the decisions from the log. */
  logLevel?: string;
}

/** The `xlb agent` arguments for a node of the topology, its endpoints on an ephemeral port. */
export function nodeAgentArgs(p: NodeAgentPlacement): string[] {
  return [
    '--node-name',
    p.nodeName,
    '--uplink',
    'eth0',
    '--netns',
    p.netns,
    ...(p.manifests === undefined ? [] : ['--manifests', p.manifests]),
    '--pin-dir',
    p.pinDir,
    '--metrics-address',
    '127.0.0.1:0',
    '--log-level',
    p.logLevel ?? 'debug',
  ];
}

export class AgentProcess {
  readonly lines: LogLine[] = [];
  /** Lines that were not JSON (there should be none on stdout). */
  readonly other: string[] = [];
  stderr = '';
  url = '';
  private readonly exited: Promise<number | null>;

  private constructor(
    readonly args: readonly string[],
    private readonly child: ChildProcess,
    log?: WriteStream,
  ) {
    if (log) {
      child.stdout!.pipe(log, { end: false });
      child.stderr!.pipe(log, { end: false });
      // After the last output, not at exit (the pipes may still hold some).
      child.once('close', () => log.end());
    }
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line) as LogLine);
      } catch {
        this.other.push(line);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /**
   * Starts `xlb agent ARGS` and waits until its endpoints answer. With
   * `logFile`, its stdout and stderr are also appended to that file.
   */
  static async start(
    args: readonly string[],
    options: { logFile?: string } = {},
  ): Promise<AgentProcess> {
    const child = spawn(process.execPath, [CLI, 'agent', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log =
      options.logFile === undefined
        ? undefined
        : createWriteStream(options.logFile, { flags: 'a' });
    const agent = new AgentProcess(args, child, log);
    try {
      const serving = await agent.line('the endpoints to open', (l) =>
        l.msg.startsWith('serving /metrics'),
      );
      agent.url = serving.url as string;
      return agent;
    } catch (e) {
      agent.kill();
      throw e;
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first log line (already seen or still to come) that matches. */
  line(what: string, match: (l: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    return until(
      () => `${what} (agent log so far:\n${this.describe()})`,
      () => {
        const found = this.lines.find(match);
        if (found) return found;
        if (!this.running)
          throw new Error(`the agent exited (${this.child.exitCode}): ${this.stderr}`);
        return undefined;
      },
      timeoutMs,
    );
  }

  async waitReady(timeoutMs = 30_000): Promise<void> {
    await until(
      () => `/readyz to answer 200 (agent log so far:\n${this.describe()})`,
      async () => {
        if (!this.running)
          throw new Error(`the agent exited (${this.child.exitCode}): ${this.stderr}`);
        return (await get(`${this.url}/readyz`)).status === 200;
      },
      timeoutMs,
      50,
    );
  }

  async metrics(): Promise<string> {
    return (await get(`${this.url}/metrics`)).body;
  }

  /** Sends the signal and waits for the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number | null> {
    if (this.running) this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the agent did not exit within ${timeoutMs} ms of ${signal}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** For cleanup: kills it if it still runs. */
  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  private describe(): string {
    return this.lines
      .slice(-15)
      .map((l) => JSON.stringify(l))
      .join('\n');
  }
}

/** `xlb agent ARGS` to completion (e.g. --uninstall). */
export function runAgentCommand(args: readonly string[]): {
  status: number | null;
  stdout: string;
  stderr: string;
} {
  const r = spawnSync(process.execPath, [CLI, 'agent', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
