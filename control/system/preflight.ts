// Checks run before anything is built, so a missing privilege or tool is one
// clear sentence at the start instead of a half-built topology.
import { spawnSync } from 'node:child_process';

import { ensureBpffs } from './bpffs.js';
import { requireRoot } from './privileges.js';

export class PreflightError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PreflightError';
  }
}

export function requireCommands(what: string, commands: readonly string[]): void {
  const missing = commands.filter(
    (c) => spawnSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }).status !== 0,
  );
  if (missing.length > 0) {
    throw new PreflightError(
      `${what} needs ${missing.join(', ')}: run the README set-up command to install them`,
    );
  }
}

/** Root, the BPF filesystem, and the given commands. */
export function preflight(what: string, commands: readonly string[]): void {
  requireRoot(what);
  requireCommands(what, commands);
  try {
    ensureBpffs();
  } catch (e) {
    throw new PreflightError(
      `${what} cannot mount the BPF filesystem at /sys/fs/bpf: ${(e as Error).message}`,
    );
  }
}
