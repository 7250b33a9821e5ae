// One ELF object file: adjust before load, load, then take the programs and
// maps out as independently owned descriptors.
import {
  addon,
  type RawBpfObject,
  type RawGlobal,
  type RawMapSpec,
  type RawProgramSpec,
} from './addon.js';
import { BpfMap } from './map.js';
import { BpfProgram } from './program.js';

export class BpfObject implements Disposable {
  #raw: RawBpfObject | undefined;
  #loaded = false;

  private constructor(
    raw: RawBpfObject,
    readonly path: string,
  ) {
    this.#raw = raw;
  }

  /** Opens (parses) an object file; nothing reaches the kernel until load(). */
  static open(path: string, objectName?: string): BpfObject {
    const Ctor = addon().BpfObject;
    return new BpfObject(
      objectName === undefined ? new Ctor(path) : new Ctor(path, objectName),
      path,
    );
  }

  private get raw(): RawBpfObject {
    if (!this.#raw) throw new Error(`BPF object ${this.path} is closed`);
    return this.#raw;
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  programs(): RawProgramSpec[] {
    return this.raw.programs();
  }

  maps(): RawMapSpec[] {
    return this.raw.maps();
  }

  /** Global variables with their section (.rodata, .data, .bss), offset and size. */
  globals(): RawGlobal[] {
    return this.raw.globals();
  }

  /** Sets a global's initial value before load; `const volatile` globals become constants. */
  setGlobal(name: string, value: Buffer): void {
    this.raw.setGlobal(name, value);
  }

  setAutoload(program: string, autoload: boolean): void {
    this.raw.setAutoload(program, autoload);
  }

  setMapMaxEntries(map: string, maxEntries: number): void {
    this.raw.setMapMaxEntries(map, maxEntries);
  }

  /** Loads with an existing map (e.g. one pinned by a previous agent) in place of a new one. */
  reuseMap(name: string, map: BpfMap): void {
    this.raw.reuseMapFd(name, map.fd);
  }

  /**
   * Creates the maps and loads the programs. A verifier rejection throws a
   * BpfError whose verifierLog holds the kernel's explanation.
   */
  load(): void {
    this.raw.load();
    this.#loaded = true;
  }

  /** A new descriptor for a loaded program; the caller closes it. */
  program(name: string): BpfProgram {
    return new BpfProgram(this.raw.programFd(name));
  }

  /** A new descriptor for a created map; the caller closes it. */
  map(name: string): BpfMap {
    return new BpfMap(this.raw.mapFd(name));
  }

  /** Releases libbpf's state and its descriptors; programs and maps taken out stay open. */
  close(): void {
    this.#raw?.close();
    this.#raw = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
