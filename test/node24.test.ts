// xlb must run on Node 20 (this machine) and Node 24 (the container image).
// The addon uses Node-API only, so the same build serves both. The whole main
// job runs under Node 24 in test/demo.test.ts (one demo at a time); here the
// addon and the BPF side are loaded by Node 24 directly.
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

  it('runs a CLI command that opens pinned maps through the addon: a missing datapath is reported, not a crash', () => {
    const r = spawnSync(
      node24,
      [
        cli,
        'explain',
        '192.0.2.7:40000',
        '203.0.113.10:80/TCP',
        '--pin-dir',
        '/sys/fs/bpf/xlb-none',
      ],
      { encoding: 'utf8' },
    );
    // Exit 1 with the message, not a crash of the addon under Node 24.
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/no xlb datapath is pinned|not pinned|no datapath/i);
  });
});
