// What lives under the pin directory and how an agent tells whether the
// datapath pinned there is the one it would load itself.
//
//   <pinDir>/xlb_vips ... xlb_events   every datapath map (maps.ts mapNames)
//   <pinDir>/prog_xdp, prog_tc         the two programs
//   <pinDir>/xlb_ids                   unit and backend ids (ids.ts)
//   <pinDir>/xlb_info                  what was loaded: ABI version, the
//                                      objects' digest, the encoded settings
//
// bpffs refuses '.' in names, so staging directories are <pinDir>-next and
// <pinDir>-old.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { BpfMap } from '../../native/index.js';
import { ABI_VERSION } from './abi.js';
import { bpfObjectPath } from '../paths.js';

export const PROGRAM_PINS = { xdp: 'prog_xdp', tc: 'prog_tc' } as const;
export const ID_MAP_PIN = 'xlb_ids';
export const INFO_PIN = 'xlb_info';

const INFO_FORMAT = 1;
const INFO_VALUE_SIZE = 256;

export interface DatapathInfo {
  abiVersion: number;
  /** SHA-256 of the two BPF objects: another build is another datapath. */
  digest: Buffer;
  /** The encoded xlb_config the programs were loaded with. */
  config: Buffer;
}

export function objectDigest(): Buffer {
  const h = createHash('sha256');
  for (const name of ['xlb_xdp', 'xlb_tc']) h.update(readFileSync(bpfObjectPath(name)));
  return h.digest();
}

export function currentInfo(config: Buffer): DatapathInfo {
  return { abiVersion: ABI_VERSION, digest: objectDigest(), config };
}

export function encodeInfo(info: DatapathInfo): Buffer {
  const v = Buffer.alloc(INFO_VALUE_SIZE);
  v.writeUInt32LE(INFO_FORMAT, 0);
  v.writeUInt32LE(info.abiVersion, 4);
  info.digest.copy(v, 8, 0, 32);
  v.writeUInt32LE(info.config.length, 40);
  info.config.copy(v, 44);
  return v;
}

export function decodeInfo(v: Buffer): DatapathInfo | undefined {
  if (v.length !== INFO_VALUE_SIZE || v.readUInt32LE(0) !== INFO_FORMAT) return undefined;
  const len = v.readUInt32LE(40);
  if (44 + len > v.length) return undefined;
  return {
    abiVersion: v.readUInt32LE(4),
    digest: Buffer.from(v.subarray(8, 40)),
    config: Buffer.from(v.subarray(44, 44 + len)),
  };
}

/** A one-slot array holding the info record. */
export function createInfoMap(info: DatapathInfo): BpfMap {
  const map = BpfMap.create({
    type: 'array',
    name: INFO_PIN,
    keySize: 4,
    valueSize: INFO_VALUE_SIZE,
    maxEntries: 1,
  });
  try {
    writeInfo(map, info);
  } catch (e) {
    map.close();
    throw e;
  }
  return map;
}

export function writeInfo(map: BpfMap, info: DatapathInfo): void {
  map.update(Buffer.alloc(4), encodeInfo(info));
}

export function readInfo(map: BpfMap): DatapathInfo | undefined {
  if (map.info.valueSize !== INFO_VALUE_SIZE || map.info.keySize !== 4) return undefined;
  const v = map.lookup(Buffer.alloc(4));
  return v === undefined ? undefined : decodeInfo(v);
}

/**
 * What an agent may do with a pinned datapath, given what it would load:
 * - adopt: the same datapath; take it over as it runs.
 * - reloadPrograms: the same objects and map sizes, other settings (seed, MTU,
 *   node addresses...): new programs over the pinned maps, state and flows kept.
 * - replace: another ABI, other map sizes, or rebuilt objects: a new
 *   datapath, state reinstalled. Rebuilt objects count as incompatible even
 *   with the same ABI version: a map's flags or inner-map template may have
 *   changed (the kernel would then refuse new Maglev tables in the old
 *   xlb_maglev), and nothing short of the objects' bytes says they did not.
 */
export type PinVerdict =
  | { action: 'adopt' }
  | { action: 'reloadPrograms'; reason: string }
  | { action: 'replace'; reason: string };

export function judgePins(
  stored: DatapathInfo | undefined,
  wanted: DatapathInfo,
  sizeProblems: readonly string[],
  missingPrograms: readonly string[],
): PinVerdict {
  if (stored === undefined) {
    return { action: 'replace', reason: 'the pinned datapath has no readable version record' };
  }
  if (stored.abiVersion !== wanted.abiVersion) {
    return {
      action: 'replace',
      reason: `the pinned datapath speaks ABI ${stored.abiVersion}, this agent ABI ${wanted.abiVersion}`,
    };
  }
  if (!stored.digest.equals(wanted.digest)) {
    return { action: 'replace', reason: 'the BPF objects were rebuilt (another object digest)' };
  }
  if (sizeProblems.length > 0) return { action: 'replace', reason: sizeProblems.join('; ') };
  if (!stored.config.equals(wanted.config)) {
    return { action: 'reloadPrograms', reason: 'the datapath settings changed' };
  }
  if (missingPrograms.length > 0) {
    return {
      action: 'reloadPrograms',
      reason: `program pins missing: ${missingPrograms.join(', ')}`,
    };
  }
  return { action: 'adopt' };
}
