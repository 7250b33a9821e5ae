// The typed API over libbpf. Everything in xlb that touches BPF goes through here.
export { AddonMissingError } from './addon.js';
export { ifIndex, tc, xdp } from './attach.js';
export type { TcDirection, TcFilter, XdpAttachOptions, XdpMode, XdpState } from './attach.js';
export * from './constants.js';
export { isBpfError, isErrno } from './errors.js';
export type { BpfError } from './errors.js';
export { BpfMap, numPossibleCpus } from './map.js';
export type { Batch, CreateMapOptions, MapInfo } from './map.js';
export { inNetns } from './netns.js';
export { BpfObject } from './object.js';
export { BpfProgram } from './program.js';
export type { TestRunOptions, TestRunResult } from './program.js';
export {
  attachSocketFilter,
  connectTcp,
  dgramSocketFd,
  getSocketOption,
  getSocketTtl,
  minTtlFilter,
  setSocketOption,
  setSocketTtl,
  setTcpMd5,
  socketDrops,
  socketFd,
} from './socket.js';
export type { SocketFilterInstruction, TcpConnectOptions, TtlOptions } from './socket.js';

import { unlinkSync } from 'node:fs';

import { addon } from './addon.js';

/** Removes a pin; the object lives on while a descriptor or attachment holds it. */
export function unpin(path: string): void {
  unlinkSync(path);
}

/**
 * Keeps the calling thread on one CPU (by default the current one) and
 * returns it: test runs that must meet per-CPU state again need this.
 */
export function pinThreadToCpu(cpu?: number): number {
  return cpu === undefined ? addon().pinThreadToCpu() : addon().pinThreadToCpu(cpu);
}

export function libbpfVersion(): string {
  return addon().libbpfVersion();
}
