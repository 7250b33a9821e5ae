// The BPF filesystem is where pinned maps and programs live across agent
// restarts. Some machines do not mount it at boot; the agent mounts it.
import { mkdirSync, readFileSync } from 'node:fs';

import { run } from '../topology/ip.js';

export const BPFFS = '/sys/fs/bpf';

export function bpffsMounted(path = BPFFS): boolean {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((line) => {
      const [, mountPoint, type] = line.split(' ');
      return mountPoint === path && type === 'bpf';
    });
}

export function ensureBpffs(path = BPFFS): void {
  if (bpffsMounted(path)) return;
  mkdirSync(path, { recursive: true });
  run('mount', ['-t', 'bpf', 'bpf', path]);
}
