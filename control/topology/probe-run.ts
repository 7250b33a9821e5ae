// Starts probe.js (the client side of the test traffic) inside a network
// namespace, as a child process of its own: Node makes sockets on its own
// schedule, so a socket that must live in a namespace needs a process there.
import { spawn, type ChildProcess } from 'node:child_process';

import { distScript } from '../paths.js';

/** `probe.js ARGS` in namespace `ns`; stdout and stderr are piped. */
export function spawnProbe(
  ns: string,
  args: readonly string[],
  stdin: 'ignore' | 'pipe',
): ChildProcess {
  return spawn(
    'ip',
    ['netns', 'exec', ns, process.execPath, distScript('control/topology/probe.js'), ...args],
    { stdio: [stdin, 'pipe', 'pipe'] },
  );
}
