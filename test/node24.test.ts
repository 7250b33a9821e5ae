// xlb must run on Node 20 (this machine) and Node 24 (the container image).
// The addon uses Node-API only, so the same build serves both; this runs the
// whole main job under Node 24 to prove it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { projectRoot } from '../control/paths.js';
import { requirePrivileges } from './support/privileged.js';

const node24 = join(projectRoot(), '.setup', 'node24', 'bin', 'node');
const cli = join(projectRoot(), 'dist', 'control', 'cli', 'main.js');

describe('Node 24', () => {
  beforeAll(() => {
    requirePrivileges('node24');
    expect(
      existsSync(node24),
      `${node24} is missing: run the set-up command (scripts/setup.sh)`,
    ).toBe(true);
  });

  it('is really Node 24', () => {
    const r = spawnSync(node24, [cli, 'versions'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^node 24\.\d+\.\d+$/m);
    expect(r.stdout).toMatch(/^libbpf v1\.\d+$/m);
  });

  it('runs the main job: addon, XDP program, namespaces, counters', () => {
    const r = spawnSync(node24, [cli, 'demo'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('every counter shows the traffic that was sent');
  });
});
