// `xlb demo` from start to exit code: the story (scenario.ts), the summary,
// --hold, and the cleanup that runs whatever happened: success, a failure
// half-way, or SIGINT/SIGTERM at any step. A second signal while cleaning up
// is ignored (with a word), so an impatient Ctrl-C leaves nothing behind;
// a closed stdout (`xlb demo | head`) stops it the same way.
import { configureLogging } from '../observe/log.js';
import { DemoRunningError } from './leftovers.js';
import { DemoPreflightError } from './preflight.js';
import { delay } from '../system/delay.js';
import { Progress, type Write } from './progress.js';
import { Demo, DEFAULTS, type DemoOptions } from './scenario.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_INTERRUPTED = 130;
/** Its output was closed (128 + SIGPIPE, as a shell reports it). */
export const EXIT_OUTPUT_CLOSED = 141;

export interface RunOptions extends DemoOptions {
  /** After the summary, keep everything running until SIGINT/SIGTERM. */
  hold: boolean;
}

const STEPS = 9;

class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted (${signal})`);
    this.name = 'Interrupted';
  }
}

/** Runs the demo; resolves with the exit code. `write` gets the human output. */
export async function runDemo(
  options: Partial<RunOptions>,
  write: Write,
  writeError: Write = write,
): Promise<number> {
  const opts: RunOptions = { ...DEFAULTS, hold: false, ...options };
  // The agents log to their own files; this process's own log lines (the
  // API server double's, in --kube) would only clutter the story.
  configureLogging({ level: 'silent' });
  const controller = new AbortController();
  let cleaning = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (cleaning) {
      write(`\n(${signal}) cleaning up, please wait\n`);
      return;
    }
    if (!controller.signal.aborted) {
      write(`\n(${signal}) stopping: cleaning up, please wait\n`);
      controller.abort(new Interrupted(signal));
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // `xlb demo | head` closes our stdout early. Node ignores SIGPIPE and
  // reports EPIPE on the stream instead, which unhandled would end the
  // process with everything still built: stop writing, and clean up as for
  // a signal.
  let outputClosed = false;
  const onOutputError = (e: NodeJS.ErrnoException): void => {
    if (e.code !== 'EPIPE') return;
    outputClosed = true;
    if (!controller.signal.aborted) controller.abort(new Interrupted('SIGPIPE'));
  };
  process.stdout.on('error', onOutputError);
  process.stderr.on('error', onOutputError);
  const guard =
    (w: Write): Write =>
    (text) => {
      if (!outputClosed) w(text);
    };
  write = guard(write);
  writeError = guard(writeError);

  const progress = new Progress(STEPS, write);
  const demo = new Demo(opts, progress, controller.signal);
  let code: number | undefined;
  try {
    await demo.story();
    const failed = progress.failed;
    await progress.run('summary', () =>
      Promise.resolve({
        value: undefined,
        lines: [
          ...demo.summary(),
          '',
          failed.length === 0
            ? `all ${progress.checks.length} checks held`
            : `${failed.length} of ${progress.checks.length} checks did not hold: ${failed.map((c) => c.name).join('; ')}`,
        ],
      }),
    );
    code = failed.length === 0 ? EXIT_OK : EXIT_FAILED;
    if (opts.hold) {
      progress.line();
      progress.lines(demo.holdHints(), '');
      await delay(2 ** 31 - 1, controller.signal).catch(() => undefined);
    }
  } catch (e) {
    if (e instanceof Interrupted || controller.signal.aborted) {
      code = outputClosed ? EXIT_OUTPUT_CLOSED : EXIT_INTERRUPTED;
    } else {
      code = EXIT_FAILED;
      const refusal = e instanceof DemoPreflightError || e instanceof DemoRunningError;
      writeError(`xlb demo: ${(e as Error).message}\n`);
      if (!refusal) writeError('xlb demo: stopped half-way; cleaning up\n');
    }
  } finally {
    cleaning = true;
    const built = demo.tempDir !== '';
    if (built) {
      progress.skipTo(STEPS - 1);
      // A run that went wrong keeps the agents' logs: they say why.
      const keepLogs = code === EXIT_FAILED;
      await progress
        .run(
          'cleaning up: agents, BIRD, pods, connections, namespaces, pins, temp dir',
          async () => {
            const kept = await demo.cleanup({ keepLogs });
            return {
              value: undefined,
              lines: kept === undefined ? [] : [`the agents' logs are kept in ${kept}`],
            };
          },
        )
        .catch((e: unknown) => {
          writeError(`xlb demo: ${(e as Error).message}\n`);
          code = EXIT_FAILED;
        });
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.off('error', onOutputError);
    process.stderr.off('error', onOutputError);
  }
  return code ?? EXIT_FAILED;
}
