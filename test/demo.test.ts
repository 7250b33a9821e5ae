// Runs the README's main job (the built CLI) end to end and checks what it
// printed, and that it left nothing behind.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { expectedMinimums } from '../control/demo/counters-demo.js';
import { projectRoot } from '../control/paths.js';
import { requirePrivileges } from './support/privileged.js';

const cli = join(projectRoot(), 'dist', 'control', 'cli', 'main.js');

function netnsList(): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean);
}

describe('xlb demo (the main job)', () => {
  beforeAll(() => {
    requirePrivileges('demo');
    expect(existsSync(cli), `${cli} is missing: run the set-up command (scripts/setup.sh)`).toBe(
      true,
    );
  });

  it('sends real traffic through the XDP program, prints matching counters and cleans up', () => {
    const r = spawnSync(process.execPath, [cli, 'demo'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const out = r.stdout;
    for (const step of ['[1/5]', '[2/5]', '[3/5]', '[4/5]', '[5/5]']) expect(out).toContain(step);
    expect(out).toContain('every counter shows the traffic that was sent');

    const tag = /xlbd-([0-9a-f]{6})-client/.exec(out)?.[1];
    expect(tag, 'demo did not name its namespaces').toBeDefined();
    expect(netnsList().filter((n) => n.includes(tag!))).toEqual([]);
    expect(readdirSync('/sys/fs/bpf').filter((p) => p.includes(tag!))).toEqual([]);

    // The table: "counter  cpuN pkts...  packets  bytes"; check the totals the demo printed.
    const totals = new Map<string, number>();
    for (const line of out.split('\n')) {
      const m = /^\s+([a-z0-9_]+)\s+((?:\d+\s+)+)(\d+)\s+(\d+)$/.exec(line);
      if (m) totals.set(m[1]!, Number(m[3]));
    }
    for (const [name, min] of Object.entries(
      expectedMinimums({ pings: 5, datagrams: 20, connections: 5 }),
    )) {
      expect(totals.get(name.toLowerCase()), name).toBeGreaterThanOrEqual(min);
    }
    expect(totals.get('pass_unparsed')).toBe(0);
    expect(totals.get('local')).toBe(0);
  });

  it('refuses to run without root, with a message that says why', () => {
    const r = spawnSync(process.execPath, [cli, 'demo'], {
      encoding: 'utf8',
      uid: 65534,
      gid: 65534,
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/xlb demo needs root \(CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN/);
    expect(r.stdout).toBe('');
  });
});
