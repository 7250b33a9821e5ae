// Lint, format and type checks are part of the test command, so CI fails on
// them like on any other test.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { projectRoot } from '../control/paths.js';

function check(program: string, args: string[]): { status: number | null; output: string } {
  const root = projectRoot();
  const bin = program === 'make' ? 'make' : join(root, 'node_modules', '.bin', program);
  const r = spawnSync(bin, args, { cwd: root, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, output: `${r.error?.message ?? ''}${r.stdout}${r.stderr}`.trim() };
}

describe('lint and format', { timeout: 300_000 }, () => {
  it('type-checks (tsc strict, every file)', () => {
    const r = check('tsc', ['-p', 'tsconfig.json', '--noEmit']);
    expect(r.output, 'tsc reported errors').toBe('');
    expect(r.status).toBe(0);
  });

  it('passes eslint', () => {
    const r = check('eslint', ['--max-warnings', '0', '.']);
    expect(r.status, r.output).toBe(0);
  });

  it('is formatted with prettier', () => {
    const r = check('prettier', ['--check', '--log-level', 'warn', '.']);
    expect(r.status, `run \`npm run format\`:\n${r.output}`).toBe(0);
  });

  it('has C formatted with clang-format', () => {
    const r = check('make', ['-s', '-C', 'bpf', 'format-check']);
    expect(r.status, `run \`make -C bpf format\`:\n${r.output}`).toBe(0);
  });
});
