// The result file every benchmark writes: bench/results/NAME.json, as
// {"name", "date", "machine", "figures": [...]}.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

import { renderTable } from '../control/cli/table.js';
import { projectRoot } from '../control/paths.js';

export interface Target {
  op: '<=' | '>=';
  value: number;
}

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** The same quantity for the baseline, measured in the same run. */
  baseline?: number;
  target?: Target;
  met?: boolean;
}

export interface BenchResult {
  name: string;
  date: string;
  machine: { cpu: string; cores: number; memoryBytes: number; kernel: string; node: string };
  figures: Figure[];
}

export function machine(): BenchResult['machine'] {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryBytes: os.totalmem(),
    kernel: os.release(),
    node: process.version,
  };
}

/** Fills in `met` from the target, so the file says plainly whether it was reached. */
export function judge(figure: Figure): Figure {
  if (!figure.target) return figure;
  const { op, value } = figure.target;
  return { ...figure, met: op === '<=' ? figure.value <= value : figure.value >= value };
}

const fmt = (n: number): string => (Number.isInteger(n) ? String(n) : n.toPrecision(4));

export function report(name: string, figures: Figure[]): BenchResult {
  const result: BenchResult = {
    name,
    date: new Date().toISOString(),
    machine: machine(),
    figures: figures.map(judge),
  };
  const rows = result.figures.map((f) => [
    f.name,
    fmt(f.value),
    f.unit,
    f.baseline === undefined ? '' : fmt(f.baseline),
    f.baseline === undefined || f.baseline === 0 ? '' : `${fmt(f.value / f.baseline)}x`,
    f.target ? `${f.target.op} ${fmt(f.target.value)}` : '',
    f.met === undefined ? '' : f.met ? 'yes' : 'NO',
  ]);
  for (const line of renderTable(
    ['figure', 'value', 'unit', 'baseline', 'ratio', 'target', 'met'],
    rows,
  ))
    console.log(line);
  const dir = join(projectRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwrote ${file}`);
  return result;
}
