// Pinning the calling thread to a CPU: what per-CPU datapath tests rely on.
// (Each test file runs in its own worker process, so the pin ends with it.)
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { isBpfError, pinThreadToCpu } from '../native/index.js';

/** The CPUs this thread may run on, from /proc (Cpus_allowed_list). */
function allowedCpus(): string {
  const status = readFileSync('/proc/thread-self/status', 'utf8');
  return /^Cpus_allowed_list:\s*(.+)$/m.exec(status)![1]!.trim();
}

describe('pinThreadToCpu', () => {
  it('keeps the calling thread on the CPU it names or runs on, and refuses a CPU that does not exist', () => {
    expect(pinThreadToCpu(0)).toBe(0);
    expect(allowedCpus()).toBe('0');
    const here = pinThreadToCpu();
    expect(allowedCpus()).toBe(String(here));
    let error: unknown;
    try {
      pinThreadToCpu(1000);
    } catch (e) {
      error = e;
    }
    expect(isBpfError(error) && error.code).toBe('EINVAL');
    expect(allowedCpus()).toBe(String(here));
  });
});
