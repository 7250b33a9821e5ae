import { mkdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { bpfObjectPath } from '../control/paths.js';
import {
  BpfMap,
  BpfObject,
  BpfProgram,
  isBpfError,
  MapFlag,
  numPossibleCpus,
  unpin,
  XdpAction,
} from '../native/index.js';
import { u32le, u64le } from './support/bytes.js';
import { requirePrivileges } from './support/privileged.js';

describe('BpfMap', () => {
  let obj: BpfObject;
  const pinDir = `/sys/fs/bpf/xlb-test-${randomBytes(4).toString('hex')}`;

  beforeAll(() => {
    requirePrivileges('native-maps');
    obj = BpfObject.open(bpfObjectPath('test/fixture'));
    obj.load();
  });
  afterAll(() => {
    obj?.close();
    rmSync(pinDir, { recursive: true, force: true });
  });

  it('looks up, updates and deletes in a hash map, honouring update modes', () => {
    using map = obj.map('fixture_hash');
    expect(map.info).toMatchObject({
      type: 1,
      keySize: 4,
      valueSize: 8,
      maxEntries: 1024,
      perCpu: false,
      name: 'fixture_hash',
    });
    expect(map.lookup(u32le(7))).toBeUndefined();
    map.update(u32le(7), u64le(70n), 'noExist');
    expect(map.lookup(u32le(7))).toEqual(u64le(70n));
    expect(() => map.update(u32le(7), u64le(71n), 'noExist')).toThrow(/EEXIST/);
    expect(() => map.update(u32le(8), u64le(80n), 'exist')).toThrow(/ENOENT/);
    map.update(u32le(7), u64le(71n), 'exist');
    expect(map.lookup(u32le(7))).toEqual(u64le(71n));
    expect(map.delete(u32le(7))).toBe(true);
    expect(map.delete(u32le(7))).toBe(false);
    expect(() => map.lookup(Buffer.alloc(3))).toThrow(/key is 3 bytes, the map's keys are 4/);
    expect(() => map.update(u32le(1), Buffer.alloc(4))).toThrow(
      /value is 4 bytes, the map's values are 8/,
    );
  });

  it('iterates keys and entries, and batches updates, lookups and deletes', () => {
    using map = obj.map('fixture_hash');
    const entries = Array.from(
      { length: 1000 },
      (_, i) => [u32le(i), u64le(BigInt(i) * 3n)] as const,
    );
    expect(map.updateBatch(entries)).toBe(1000);
    const keys = [...map.keys()].map((k) => k.readUInt32LE(0)).sort((a, b) => a - b);
    expect(keys).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    for (const [k, v] of map.entries())
      expect(v.readBigUInt64LE(0)).toBe(BigInt(k.readUInt32LE(0)) * 3n);

    const seen = new Map<number, bigint>();
    let batches = 0;
    for (const b of map.lookupBatches(128)) {
      batches++;
      b.keys.forEach((k, i) => seen.set(k.readUInt32LE(0), b.values[i]!.readBigUInt64LE(0)));
    }
    expect(batches).toBeGreaterThanOrEqual(8);
    expect(seen.size).toBe(1000);
    for (const [k, v] of seen) expect(v).toBe(BigInt(k) * 3n);

    expect(map.deleteBatch(entries.map(([k]) => k))).toBe(1000);
    expect([...map.keys()]).toEqual([]);
    expect(() => map.deleteBatch([u32le(5)])).toThrow(/ENOENT/);
  });

  it('returns one value per possible CPU for per-CPU maps, and writes them', () => {
    const cpus = numPossibleCpus();
    expect(cpus).toBeGreaterThanOrEqual(1);
    using map = obj.map('fixture_percpu_hash');
    expect(map.info.perCpu).toBe(true);
    const values = Array.from({ length: cpus }, (_, i) => u32le(100 + i));
    map.updatePerCpu(u32le(1), values);
    expect(map.lookupPerCpu(u32le(1))).toEqual(values);
    expect(() => map.lookup(u32le(1))).toThrow(/is per-CPU: use lookupPerCpu/);
    expect(() => map.updatePerCpu(u32le(2), values.slice(1))).toThrow(/CPUs possible/);
    const all = [...map.entriesPerCpu()];
    expect(all).toHaveLength(1);
    expect(all[0]![1]).toEqual(values);
    const batched = [...map.lookupBatches()];
    expect(map.splitPerCpu(batched[0]!.values[0]!)).toEqual(values);
  });

  it('answers longest-prefix matches from an LPM trie', () => {
    using map = obj.map('fixture_lpm');
    const key = (prefix: number, a: number, b: number, c: number, d: number): Buffer => {
      const k = Buffer.alloc(8);
      k.writeUInt32LE(prefix, 0);
      k.set([a, b, c, d], 4);
      return k;
    };
    map.update(key(24, 192, 0, 2, 0), u32le(24));
    map.update(key(28, 192, 0, 2, 16), u32le(28));
    expect(map.lookup(key(32, 192, 0, 2, 17))).toEqual(u32le(28));
    expect(map.lookup(key(32, 192, 0, 2, 200))).toEqual(u32le(24));
    expect(map.lookup(key(32, 198, 51, 100, 1))).toBeUndefined();
  });

  it('evicts from an LRU hash instead of failing when full', () => {
    using map = obj.map('fixture_lru');
    for (let i = 0n; i < 2000n; i++) map.update(u64le(i), u32le(Number(i)));
    const count = [...map.keys()].length;
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThanOrEqual(map.info.maxEntries);
    expect(map.lookup(u64le(1999n))).toEqual(u32le(1999));
  });

  it('swaps whole inner maps into an array-of-maps, and the program sees the new one', () => {
    using prog = obj.program('fixture_mim');
    using outer = obj.map('fixture_outer');
    const inner = (v: number): BpfMap => {
      const m = BpfMap.create({
        type: 'array',
        name: 'test_inner',
        keySize: 4,
        valueSize: 4,
        maxEntries: 8,
      });
      m.update(u32le(0), u32le(v));
      return m;
    };
    const frame = Buffer.alloc(64);
    expect(prog.testRun({ data: frame }).retval).toBe(XdpAction.drop); // no inner map yet
    using first = inner(0x1111);
    outer.setInnerMap(u32le(0), first);
    let r = prog.testRun({ data: frame });
    expect(r.retval).toBe(XdpAction.tx);
    expect(r.data.readUInt32LE(0)).toBe(0x1111);
    using second = inner(0x2222);
    outer.setInnerMap(u32le(0), second);
    r = prog.testRun({ data: frame });
    expect(r.data.readUInt32LE(0)).toBe(0x2222);
    using current = outer.innerMap(u32le(0))!;
    expect(current.info.id).toBe(second.info.id);
    expect(outer.innerMap(u32le(1))).toBeUndefined();
    // A map with the wrong shape is refused by the kernel, not silently used.
    using wrong = BpfMap.create({
      type: 'array',
      name: 'wrong_inner',
      keySize: 4,
      valueSize: 8,
      maxEntries: 8,
    });
    expect(() => outer.setInnerMap(u32le(1), wrong)).toThrow(/EINVAL/);
  });

  it('writes a whole mmapable array with one memory copy, and packed batches without a Buffer per element', () => {
    using arr = BpfMap.create({
      type: 'array',
      name: 'xlb_t_mmap',
      keySize: 4,
      valueSize: 4,
      maxEntries: 1000,
      flags: MapFlag.mmapable,
    });
    const words = new Uint32Array(2 * 1000);
    for (let i = 0; i < 1000; i++) words[2 * i] = 7 * i + 1;
    arr.writeMapped(Buffer.from(words.buffer));
    for (const i of [0, 1, 499, 999]) expect(arr.lookup(u32le(i))).toEqual(u32le(7 * i + 1));
    arr.writeMapped(u32le(42), 8 * 10);
    expect(arr.lookup(u32le(10))).toEqual(u32le(42));
    expect(() => arr.writeMapped(Buffer.alloc(16), 8 * 999)).toThrow(RangeError);

    // Strided words: one half of two-word elements, the other half untouched.
    using pairs = BpfMap.create({
      type: 'array',
      name: 'xlb_t_pairs',
      keySize: 4,
      valueSize: 8,
      maxEntries: 300,
      flags: MapFlag.mmapable,
    });
    const half = Uint32Array.from({ length: 300 }, (_, i) => 3 * i + 5);
    pairs.writeMappedWords(half, 4, 8);
    pairs.writeMappedWords(Uint32Array.of(9, 8), 0, 8 * 299);
    for (const i of [0, 1, 150, 299]) {
      const v = pairs.lookup(u32le(i))!;
      expect([v.readUInt32LE(0), v.readUInt32LE(4)], `element ${i}`).toEqual([
        i === 0 ? 9 : i === 299 ? 8 : 0,
        3 * i + 5,
      ]);
    }
    expect(() => pairs.writeMappedWords(Uint32Array.of(1, 2), 8 * 299, 8)).toThrow(RangeError);
    expect(() => pairs.writeMappedWords(Uint32Array.of(1), 2, 8)).toThrow(RangeError);

    using plain = BpfMap.create({
      type: 'array',
      name: 'xlb_t_plain',
      keySize: 4,
      valueSize: 4,
      maxEntries: 4,
    });
    expect(() => plain.writeMapped(u32le(1))).toThrow(/not created mmapable/);
    const keys = Buffer.concat([u32le(1), u32le(3)]);
    expect(plain.updateBatchPacked(keys, Buffer.concat([u32le(10), u32le(30)]), 2)).toBe(2);
    expect(plain.lookup(u32le(3))).toEqual(u32le(30));
    expect(() => plain.updateBatchPacked(keys, u32le(10), 2)).toThrow(RangeError);
  });

  it('pins, reopens and unpins maps and programs', () => {
    mkdirSync(pinDir, { recursive: true });
    using map = obj.map('fixture_array');
    map.update(u32le(3), u64le(33n));
    map.pin(`${pinDir}/array`);
    using prog = obj.program('fixture_xdp');
    prog.pin(`${pinDir}/prog`);

    using again = BpfMap.openPinned(`${pinDir}/array`);
    expect(again.info.id).toBe(map.info.id);
    expect(again.lookup(u32le(3))).toEqual(u64le(33n));
    using progAgain = BpfProgram.openPinned(`${pinDir}/prog`);
    expect(progAgain.info.id).toBe(prog.info.id);

    unpin(`${pinDir}/array`);
    unpin(`${pinDir}/prog`);
    let err: unknown;
    try {
      BpfMap.openPinned(`${pinDir}/array`);
    } catch (e) {
      err = e;
    }
    expect(isBpfError(err) && err.code).toBe('ENOENT');
  });

  it('reuses an existing map at load, so a new object shares its state', () => {
    using shared = obj.map('fixture_percpu');
    using second = BpfObject.open(bpfObjectPath('test/fixture'));
    second.reuseMap('fixture_percpu', shared);
    second.load();
    using prog = second.program('fixture_xdp');
    const before = shared.lookupPerCpu(u32le(0))!.reduce((s, b) => s + b.readBigUInt64LE(0), 0n);
    prog.testRun({ data: Buffer.alloc(64), repeat: 5 });
    const after = shared.lookupPerCpu(u32le(0))!.reduce((s, b) => s + b.readBigUInt64LE(0), 0n);
    expect(after - before).toBe(5n);
  });
});
