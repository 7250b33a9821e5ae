// Ends every run with one plain line, `N passed, N failed`, for people and CI
// logs alike. A skipped test counts as failed: tests here never skip (a test
// that cannot run must say why and fail), so a skip is always a mistake. A
// file that fails before its tests run (import error, failing beforeAll)
// counts its tests as failed, or one failure when none were collected.
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    const skipped: string[] = [];
    for (const mod of modules) {
      let tests = 0;
      for (const test of mod.children.allTests()) {
        tests++;
        const state = test.result().state;
        if (state === 'passed') passed++;
        else {
          failed++;
          if (state === 'skipped') skipped.push(test.fullName);
        }
      }
      if (tests === 0 && mod.state() === 'failed') failed++;
    }
    failed += unhandledErrors.length;
    if (skipped.length > 0) {
      process.stdout.write(
        `\nskipped tests count as failed here:\n${skipped.map((s) => `  ${s}`).join('\n')}\n`,
      );
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
  }
}
