// Counts the writes a piece of code makes to BPF maps, at the lowest level
// (every BpfMap method that changes a map), named `<map>.<method>`: the proof
// that a reconcile or an adoption wrote nothing, or only what it should.
import { vi } from 'vitest';

import { BpfMap } from '../../native/index.js';

const writeMethods = [
  'update',
  'updatePerCpu',
  'delete',
  'updateBatch',
  'updateBatchPacked',
  'deleteBatch',
  'setInnerMap',
  'writeMapped',
  'writeMappedWords',
] as const;

export function countMapWrites<T>(fn: () => T): { result: T; writes: string[] } {
  const spies = writeMethods.map((m) => vi.spyOn(BpfMap.prototype, m));
  try {
    const result = fn();
    const writes: string[] = [];
    spies.forEach((spy, i) => {
      for (const ctx of spy.mock.contexts) {
        writes.push(`${(ctx as BpfMap).info.name}.${writeMethods[i]}`);
      }
    });
    return { result, writes: writes.sort() };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}
