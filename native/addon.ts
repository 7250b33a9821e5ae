// Loads the compiled addon and describes its raw surface. Nothing outside
// native/ imports this file: the typed wrappers next to it are the API.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

import { nativeAddonPath } from '../control/paths.js';

export interface RawMapInfo {
  id: number;
  type: number;
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export interface RawProgInfo {
  id: number;
  type: number;
  name: string;
  tag: Buffer;
}

export interface RawProgramSpec {
  name: string;
  section: string;
  type: number;
  autoload: boolean;
}

export interface RawMapSpec {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  internal: boolean;
}

export interface RawGlobal {
  section: string;
  name: string;
  offset: number;
  size: number;
}

export interface RawBpfObject {
  programs(): RawProgramSpec[];
  maps(): RawMapSpec[];
  globals(): RawGlobal[];
  setGlobal(name: string, value: Buffer): void;
  setAutoload(program: string, autoload: boolean): void;
  setMapMaxEntries(map: string, maxEntries: number): void;
  reuseMapFd(map: string, fd: number): void;
  load(): void;
  programFd(name: string): number;
  mapFd(name: string): number;
  close(): void;
}

export interface RawTestRunOptions {
  data?: Buffer;
  dataOutSize?: number;
  ctx?: Buffer;
  ctxOutSize?: number;
  repeat?: number;
  flags?: number;
  batchSize?: number;
  cpu?: number;
}

export interface RawTestRunResult {
  retval: number;
  duration: number;
  data: Buffer;
  ctx: Buffer;
}

export interface RawBatch {
  count: number;
  keys: Buffer;
  values: Buffer;
  token: Buffer;
  done: boolean;
}

export interface RawXdpQuery {
  mode: number;
  progId: number;
  driverProgId: number;
  genericProgId: number;
  offloadProgId: number;
}

export interface RawAddon {
  BpfObject: new (path: string, objectName?: string) => RawBpfObject;
  mapInfo(fd: number): RawMapInfo;
  progInfo(fd: number): RawProgInfo;
  mapLookup(fd: number, key: Buffer, valueBytes: number, flags?: number): Buffer | null;
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags?: number): void;
  mapDelete(fd: number, key: Buffer): boolean;
  mapNextKey(fd: number, key: Buffer | null, keySize: number): Buffer | null;
  mapLookupBatch(
    fd: number,
    token: Buffer | null,
    keySize: number,
    valueBytes: number,
    count: number,
  ): RawBatch;
  mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number, flags?: number): number;
  mapDeleteBatch(fd: number, keys: Buffer, count: number): number;
  mapWriteMapped(fd: number, offset: number, data: Buffer): void;
  mapWriteMappedWords(fd: number, offset: number, stride: number, words: Buffer): void;
  createMap(
    type: number,
    name: string,
    keySize: number,
    valueSize: number,
    maxEntries: number,
    flags: number,
    innerMapFd?: number,
  ): number;
  mapFdById(id: number): number;
  progFdById(id: number): number;
  numPossibleCpus(): number;
  pinThreadToCpu(cpu?: number): number;
  xdpAttach(ifindex: number, progFd: number, flags: number, oldProgFd?: number): void;
  xdpDetach(ifindex: number, flags: number): void;
  xdpQuery(ifindex: number): RawXdpQuery;
  tcAttach(
    ifindex: number,
    direction: 'ingress' | 'egress',
    progFd: number,
    handle: number,
    priority: number,
  ): { handle: number; priority: number; progId: number };
  tcDetach(
    ifindex: number,
    direction: 'ingress' | 'egress',
    handle: number,
    priority: number,
  ): boolean;
  tcQuery(
    ifindex: number,
    direction: 'ingress' | 'egress',
    handle: number,
    priority: number,
  ): number;
  tcRemoveClsact(ifindex: number): boolean;
  ifIndex(name: string): number;
  testRun(progFd: number, options: RawTestRunOptions): RawTestRunResult;
  testRunAsync(progFd: number, options: RawTestRunOptions): Promise<RawTestRunResult>;
  objPin(fd: number, path: string): void;
  objGet(path: string): number;
  closeFd(fd: number): void;
  netnsEnter(path: string): number;
  netnsRestore(fd: number): void;
  tcpMd5(fd: number, family: 4 | 6, address: Buffer, key: Buffer, prefixLen?: number): void;
  setSockOptInt(fd: number, level: number, name: number, value: number): void;
  getSockOptInt(fd: number, level: number, name: number): number;
  tcpSocket(family: 4 | 6): number;
  attachSocketFilter(fd: number, program: [number, number, number, number][]): void;
  socketDrops(fd: number): number;
  libbpfVersion(): string;
}

let cached: RawAddon | undefined;

export class AddonMissingError extends Error {
  constructor(path: string) {
    super(
      `the xlb native addon is not built (${path} is missing): ` +
        'run the README set-up command, or `npm run build:addon`',
    );
    this.name = 'AddonMissingError';
  }
}

export function addon(): RawAddon {
  if (cached) return cached;
  const path = nativeAddonPath();
  if (!existsSync(path)) throw new AddonMissingError(path);
  const require = createRequire(import.meta.url);
  cached = require(path) as RawAddon;
  return cached;
}
