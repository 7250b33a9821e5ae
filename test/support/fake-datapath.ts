// A DatapathPort that records what the agent asks of it and answers each
// submission with an attempt the test chooses, so the agent's pipeline is
// tested without root or BPF.
import type {
  AgentDatapath,
  DatapathLocation,
  DatapathPort,
  OpenDatapathRequest,
  ReconcileAttempt,
  ReconcileSink,
  UninstallReport,
} from '../../control/agent/ports.js';
import type { Unit } from '../../control/model/index.js';

export type FakeOutcome = 'ok' | Error;

export class FakeDatapath implements DatapathPort {
  readonly opened: OpenDatapathRequest[] = [];
  readonly uninstalled: DatapathLocation[] = [];
  /** Every submission, in order. */
  readonly submissions: Unit[][] = [];
  /** What happened, in order: 'open', 'submit', 'stop', 'close'. */
  readonly calls: string[] = [];
  /** The outcome of the next attempts; the last one repeats. */
  outcomes: FakeOutcome[] = ['ok'];
  openError: Error | undefined;
  submitError: Error | undefined;
  private readonly listeners = new Set<(a: ReconcileAttempt) => void>();
  private inFlight: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Like the real loop: a failed attempt is tried again after this long. */
  retryMs = 20;

  open(request: OpenDatapathRequest): Promise<AgentDatapath> {
    this.calls.push('open');
    this.opened.push(request);
    if (this.openError) return Promise.reject(this.openError);
    const reconciler: ReconcileSink = {
      submit: (units) => {
        this.calls.push('submit');
        if (this.submitError) throw this.submitError;
        this.submissions.push([...units]);
        // Asynchronous like the real loop: the attempt reports later.
        this.inFlight = this.inFlight.then(() => this.attempt());
      },
      onAttempt: (listener) => {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
      },
      stop: async () => {
        this.calls.push('stop');
        this.stopped = true;
        await this.inFlight;
      },
    };
    return Promise.resolve({
      origin: 'installed',
      details: { fake: true },
      reconciler,
      servedVips: (addresses) => {
        const served = new Set(this.lastUnits?.flatMap((u) => u.frontends.map((f) => f.address)));
        return addresses.filter((a) => served.has(a));
      },
      close: () => this.calls.push('close'),
    });
  }

  uninstall(location: DatapathLocation): Promise<UninstallReport> {
    this.uninstalled.push(location);
    return Promise.resolve({ removed: [`unpinned ${location.pinDir}`] });
  }

  get lastUnits(): Unit[] | undefined {
    return this.submissions.at(-1);
  }

  private async attempt(): Promise<void> {
    await new Promise((r) => setTimeout(r, 1));
    const outcome = this.outcomes.length > 1 ? this.outcomes.shift()! : this.outcomes[0]!;
    const attempt: ReconcileAttempt =
      outcome === 'ok'
        ? { ok: true, durationMs: 1, summary: { units: this.lastUnits?.length ?? 0 } }
        : { ok: false, durationMs: 1, error: outcome, retryInMs: 100 };
    for (const l of this.listeners) l(attempt);
    if (!attempt.ok && !this.stopped)
      setTimeout(() => {
        if (!this.stopped) this.inFlight = this.inFlight.then(() => this.attempt());
      }, this.retryMs);
  }
}
