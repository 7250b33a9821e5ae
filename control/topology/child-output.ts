// The whole output of a short-lived child process. 'exit' can come before the
// last of its stdout has been read (the pipes drain on their own schedule),
// so an answer parsed at 'exit' may be cut short or empty; 'close' comes once
// every stdio stream has ended.
import type { ChildProcess } from 'node:child_process';

export interface ChildOutput {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Resolves when the child has exited and its stdout and stderr are read to the end. */
export function childOutput(child: ChildProcess): Promise<ChildOutput> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) =>
      resolve({ code, signal, stdout, stderr }),
    );
  });
}
