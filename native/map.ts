// Typed access to one BPF map through a descriptor this object owns.
import { addon, type RawMapInfo } from './addon.js';
import {
  isPerCpuMapType,
  MapFlag,
  MapType,
  type MapTypeName,
  UpdateFlag,
  type UpdateMode,
} from './constants.js';
import { Descriptor } from './descriptor.js';

export interface MapInfo extends RawMapInfo {
  perCpu: boolean;
}

export interface CreateMapOptions {
  type: MapTypeName;
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  /** Template for the inner maps of an array-of-maps or hash-of-maps. */
  innerMap?: BpfMap;
}

export interface Batch {
  keys: Buffer[];
  values: Buffer[];
}

let possibleCpus: number | undefined;

/** CPUs a per-CPU map holds a value for (possible, not online, CPUs). */
export function numPossibleCpus(): number {
  possibleCpus ??= addon().numPossibleCpus();
  return possibleCpus;
}

export class BpfMap extends Descriptor {
  readonly info: MapInfo;

  /** Takes ownership of fd. */
  constructor(fd: number) {
    super(fd);
    try {
      const raw = addon().mapInfo(fd);
      this.info = { ...raw, perCpu: isPerCpuMapType(raw.type) };
    } catch (e) {
      this.close();
      throw e;
    }
  }

  static create(options: CreateMapOptions): BpfMap {
    const fd = addon().createMap(
      MapType[options.type],
      options.name,
      options.keySize,
      options.valueSize,
      options.maxEntries,
      options.flags ?? 0,
      options.innerMap?.fd,
    );
    return new BpfMap(fd);
  }

  static openPinned(path: string): BpfMap {
    return new BpfMap(addon().objGet(path));
  }

  static fromId(id: number): BpfMap {
    return new BpfMap(addon().mapFdById(id));
  }

  get keySize(): number {
    return this.info.keySize;
  }

  /** Bytes of one CPU's value as the kernel lays them out (rounded to 8 for per-CPU maps). */
  private get slotSize(): number {
    return this.info.perCpu ? (this.info.valueSize + 7) & ~7 : this.info.valueSize;
  }

  /** Bytes of one element's whole value: every CPU's slot for per-CPU maps. */
  private get valueBytes(): number {
    return this.info.perCpu ? this.slotSize * numPossibleCpus() : this.info.valueSize;
  }

  private checkKey(key: Buffer): void {
    if (key.length !== this.info.keySize) {
      throw new RangeError(
        `map ${this.info.name}: key is ${key.length} bytes, the map's keys are ${this.info.keySize}`,
      );
    }
  }

  private requirePerCpu(perCpu: boolean, op: string): void {
    if (this.info.perCpu !== perCpu) {
      const hint = this.info.perCpu ? `${op}PerCpu` : op.replace(/PerCpu$/, '');
      throw new TypeError(
        `map ${this.info.name} is ${this.info.perCpu ? '' : 'not '}per-CPU: use ${hint}()`,
      );
    }
  }

  private splitCpus(raw: Buffer): Buffer[] {
    const out: Buffer[] = [];
    for (let off = 0; off < raw.length; off += this.slotSize) {
      out.push(raw.subarray(off, off + this.info.valueSize));
    }
    return out;
  }

  private joinCpus(values: readonly Buffer[]): Buffer {
    const cpus = numPossibleCpus();
    if (values.length !== cpus) {
      throw new RangeError(
        `map ${this.info.name}: ${values.length} per-CPU values given, ${cpus} CPUs possible`,
      );
    }
    const raw = Buffer.alloc(this.slotSize * cpus);
    values.forEach((v, i) => {
      this.checkValue(v);
      v.copy(raw, i * this.slotSize);
    });
    return raw;
  }

  private checkValue(value: Buffer): void {
    if (value.length !== this.info.valueSize) {
      throw new RangeError(
        `map ${this.info.name}: value is ${value.length} bytes, the map's values are ${this.info.valueSize}`,
      );
    }
  }

  private encodeValue(value: Buffer | readonly Buffer[]): Buffer {
    if (Buffer.isBuffer(value)) {
      this.requirePerCpu(false, 'update');
      this.checkValue(value);
      return value;
    }
    this.requirePerCpu(true, 'updatePerCpu');
    return this.joinCpus(value);
  }

  /** The value under key, or undefined when there is none. */
  lookup(key: Buffer): Buffer | undefined {
    this.requirePerCpu(false, 'lookup');
    this.checkKey(key);
    return addon().mapLookup(this.fd, key, this.valueBytes) ?? undefined;
  }

  /** Each possible CPU's value under key (index = CPU number), or undefined. */
  lookupPerCpu(key: Buffer): Buffer[] | undefined {
    this.requirePerCpu(true, 'lookupPerCpu');
    this.checkKey(key);
    const raw = addon().mapLookup(this.fd, key, this.valueBytes);
    return raw ? this.splitCpus(raw) : undefined;
  }

  update(key: Buffer, value: Buffer, mode: UpdateMode = 'any'): void {
    this.checkKey(key);
    addon().mapUpdate(this.fd, key, this.encodeValue(value), UpdateFlag[mode]);
  }

  /** Writes one value per possible CPU. */
  updatePerCpu(key: Buffer, values: readonly Buffer[], mode: UpdateMode = 'any'): void {
    this.checkKey(key);
    addon().mapUpdate(this.fd, key, this.encodeValue(values), UpdateFlag[mode]);
  }

  /** Removes key; false when it was not there. */
  delete(key: Buffer): boolean {
    this.checkKey(key);
    return addon().mapDelete(this.fd, key);
  }

  /**
   * Every key, by walking get_next_key. Entries that appear or disappear while
   * walking a hash map may be seen or missed, as with any kernel iteration.
   */
  *keys(): Generator<Buffer> {
    let key: Buffer | null = addon().mapNextKey(this.fd, null, this.info.keySize);
    while (key) {
      yield key;
      key = addon().mapNextKey(this.fd, key, this.info.keySize);
    }
  }

  /** Key-value pairs; for per-CPU maps use entriesPerCpu(). */
  *entries(): Generator<[Buffer, Buffer]> {
    this.requirePerCpu(false, 'entries');
    for (const key of this.keys()) {
      const value = addon().mapLookup(this.fd, key, this.valueBytes);
      if (value) yield [key, value];
    }
  }

  *entriesPerCpu(): Generator<[Buffer, Buffer[]]> {
    this.requirePerCpu(true, 'entriesPerCpu');
    for (const key of this.keys()) {
      const raw = addon().mapLookup(this.fd, key, this.valueBytes);
      if (raw) yield [key, this.splitCpus(raw)];
    }
  }

  /**
   * The whole map in batches of up to batchSize elements (BPF_MAP_LOOKUP_BATCH:
   * one system call per batch instead of two per element). Per-CPU values come
   * as the concatenation of every CPU's slot; use splitPerCpu() on them.
   */
  *lookupBatches(batchSize = 256): Generator<Batch> {
    let token: Buffer | null = null;
    for (;;) {
      const b = addon().mapLookupBatch(
        this.fd,
        token,
        this.info.keySize,
        this.valueBytes,
        batchSize,
      );
      if (b.count > 0) {
        const keys: Buffer[] = [];
        const values: Buffer[] = [];
        for (let i = 0; i < b.count; i++) {
          keys.push(b.keys.subarray(i * this.info.keySize, (i + 1) * this.info.keySize));
          values.push(b.values.subarray(i * this.valueBytes, (i + 1) * this.valueBytes));
        }
        yield { keys, values };
      }
      if (b.done) return;
      token = b.token;
    }
  }

  /** Splits a per-CPU value from lookupBatches() into one Buffer per CPU. */
  splitPerCpu(raw: Buffer): Buffer[] {
    this.requirePerCpu(true, 'splitPerCpu');
    return this.splitCpus(raw);
  }

  /** Writes many elements in one system call. Per-CPU maps take Buffer[] per element. */
  updateBatch(
    entries: ReadonlyArray<readonly [Buffer, Buffer | readonly Buffer[]]>,
    mode: UpdateMode = 'any',
  ): number {
    if (entries.length === 0) return 0;
    const keys = Buffer.concat(
      entries.map(([k]) => {
        this.checkKey(k);
        return k;
      }),
    );
    const values = Buffer.concat(entries.map(([, v]) => this.encodeValue(v)));
    return addon().mapUpdateBatch(this.fd, keys, values, entries.length, UpdateFlag[mode]);
  }

  /**
   * updateBatch for callers that already hold the keys and values packed back
   * to back (e.g. a whole Maglev table): no Buffer per element, which is
   * what costs the time for tens of thousands of elements. Not for per-CPU
   * maps.
   */
  updateBatchPacked(keys: Buffer, values: Buffer, count: number, mode: UpdateMode = 'any'): number {
    if (count === 0) return 0;
    this.requirePerCpu(false, 'updateBatchPacked');
    if (keys.length !== count * this.keySize || values.length !== count * this.valueBytes) {
      throw new RangeError(
        `packed batch of ${count}: keys must be ${count * this.keySize} bytes (got ${keys.length}), ` +
          `values ${count * this.valueBytes} bytes (got ${values.length})`,
      );
    }
    return addon().mapUpdateBatch(this.fd, keys, values, count, UpdateFlag[mode]);
  }

  /**
   * Copies `data` into the memory of an array created with MapFlag.mmapable,
   * at byte `offset`. Elements lie 8-byte aligned: element i starts at
   * i x (value size rounded up to 8).
   */
  writeMapped(data: Buffer, offset = 0): void {
    if (!(this.info.flags & MapFlag.mmapable)) {
      throw new TypeError(`map ${this.info.name} was not created mmapable`);
    }
    const size = this.info.maxEntries * ((this.info.valueSize + 7) & ~7);
    if (offset < 0 || offset + data.length > size) {
      throw new RangeError(
        `writeMapped of ${data.length} bytes at ${offset} exceeds map ${this.info.name} (${size} bytes)`,
      );
    }
    addon().mapWriteMapped(this.fd, offset, data);
  }

  /**
   * Writes `words` (4-byte words, host byte order) `stride` bytes apart from
   * `offset` on into the memory of a BPF_F_MMAPABLE array, each with one
   * aligned store: one half of a table whose elements hold two halves.
   */
  writeMappedWords(words: Uint32Array, offset: number, stride: number): void {
    if (!(this.info.flags & MapFlag.mmapable)) {
      throw new TypeError(`map ${this.info.name} was not created mmapable`);
    }
    const size = this.info.maxEntries * ((this.info.valueSize + 7) & ~7);
    const end = words.length === 0 ? offset : offset + (words.length - 1) * stride + 4;
    if (offset < 0 || stride < 4 || offset % 4 !== 0 || stride % 4 !== 0 || end > size) {
      throw new RangeError(
        `writeMappedWords of ${words.length} words from ${offset} every ${stride} bytes does not fit map ${this.info.name} (${size} bytes)`,
      );
    }
    const bytes = Buffer.from(words.buffer, words.byteOffset, words.byteLength);
    addon().mapWriteMappedWords(this.fd, offset, stride, bytes);
  }

  /** Deletes many keys in one system call; every key must exist. */
  deleteBatch(keys: readonly Buffer[]): number {
    if (keys.length === 0) return 0;
    keys.forEach((k) => this.checkKey(k));
    return addon().mapDeleteBatch(this.fd, Buffer.concat(keys), keys.length);
  }

  /** Installs inner as the map under key of this array-of-maps / hash-of-maps, atomically. */
  setInnerMap(key: Buffer, inner: BpfMap): void {
    const value = Buffer.alloc(4);
    value.writeUInt32LE(inner.fd);
    this.checkKey(key);
    addon().mapUpdate(this.fd, key, value, UpdateFlag.any);
  }

  /** The inner map under key of a map-in-map, opened by id (caller closes it), or undefined. */
  innerMap(key: Buffer): BpfMap | undefined {
    this.checkKey(key);
    const raw = addon().mapLookup(this.fd, key, 4);
    return raw ? BpfMap.fromId(raw.readUInt32LE(0)) : undefined;
  }
}
