// The demo's output for humans: numbered steps with their duration
// ("[3/9] starting BIRD and 3 agents ... done (2.1 s)"), the step's details
// indented below it, and the checks that make up the summary.
export type Print = (line: string) => void;
export type Write = (text: string) => void;

export interface Check {
  /** What was checked, e.g. "client address preserved". */
  name: string;
  ok: boolean;
  /** What was measured. */
  detail: string;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

export class Progress {
  private step = 0;
  readonly checks: Check[] = [];

  constructor(
    private readonly total: number,
    private readonly write: Write,
  ) {}

  /** The next step run is number n + 1 (the cleanup is always the last). */
  skipTo(n: number): void {
    this.step = Math.max(this.step, n);
  }

  line(text = ''): void {
    this.write(`${text}\n`);
  }

  /** Indented detail lines. */
  lines(lines: readonly string[], indent = '      '): void {
    for (const l of lines) this.line(l === '' ? '' : `${indent}${l}`);
  }

  /**
   * Runs one step: its title first (so an interruption shows where it was),
   * then done or failed with the time it took, then what it returned to print.
   */
  async run<T>(title: string, fn: () => Promise<{ value: T; lines: string[] }>): Promise<T> {
    this.step++;
    this.write(`[${this.step}/${this.total}] ${title} ... `);
    const start = performance.now();
    try {
      const { value, lines } = await fn();
      this.write(`done (${seconds(performance.now() - start)})\n`);
      this.lines(lines);
      return value;
    } catch (e) {
      this.write(`failed (${seconds(performance.now() - start)})\n`);
      throw e;
    }
  }

  /** Records a check; returns whether it held. */
  check(name: string, ok: boolean, detail: string): boolean {
    this.checks.push({ name, ok, detail });
    return ok;
  }

  get failed(): Check[] {
    return this.checks.filter((c) => !c.ok);
  }
}
