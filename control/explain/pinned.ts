// A read-only view of the datapath pinned under a pin directory: every map,
// the settings it was loaded with (the hash seed) and the id records. What
// `xlb explain` and `xlb status` read, without an agent and without writing.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { BpfMap, isBpfError } from '../../native/index.js';
import { ABI_VERSION, XlbConfig } from '../datapath/abi.js';
import { DatapathIds, idCapacities, IdMapError, isIdMap, type IdStore } from '../datapath/ids.js';
import { DatapathMaps, mapNames, type MapName } from '../datapath/maps.js';
import { ID_MAP_PIN, INFO_PIN, readInfo } from '../datapath/pins.js';

export type PinnedDatapathErrorReason = 'notPinned' | 'noPermission' | 'incompatible';

export class PinnedDatapathError extends Error {
  constructor(
    readonly reason: PinnedDatapathErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PinnedDatapathError';
  }
}

/** The id records, read only: DatapathIds writes its format record into an empty store. */
class ReadOnlyIdStore implements IdStore {
  constructor(private readonly map: BpfMap) {}
  entries(): Iterable<[Buffer, Buffer]> {
    return this.map.entries();
  }
  update(): void {}
  delete(): boolean {
    return false;
  }
}

export class PinnedDatapath implements Disposable {
  private constructor(
    readonly pinDir: string,
    readonly maps: DatapathMaps,
    readonly hashSeed: number,
    /** Undefined when the id map is missing or unreadable (the unit of a backend is then unknown). */
    readonly ids: DatapathIds | undefined,
  ) {}

  static open(pinDir: string): PinnedDatapath {
    const opened: BpfMap[] = [];
    const openPin = (name: string): BpfMap => {
      const path = join(pinDir, name);
      if (!existsSync(path)) {
        throw new PinnedDatapathError(
          'notPinned',
          `no xlb datapath is pinned at ${pinDir} (${name} is missing): is the agent running ` +
            'on this node, or was it started with another --pin-dir?',
        );
      }
      try {
        const m = BpfMap.openPinned(path);
        opened.push(m);
        return m;
      } catch (e) {
        if (isBpfError(e) && (e.code === 'EPERM' || e.code === 'EACCES')) {
          throw new PinnedDatapathError(
            'noPermission',
            `cannot open ${path}: reading the datapath's maps needs root (CAP_BPF and CAP_SYS_ADMIN)`,
            { cause: e },
          );
        }
        throw e;
      }
    };
    try {
      const maps: Partial<Record<MapName, BpfMap>> = {};
      for (const name of mapNames) maps[name] = openPin(name);
      const info = readInfo(openPin(INFO_PIN));
      if (info === undefined || info.abiVersion !== ABI_VERSION) {
        throw new PinnedDatapathError(
          'incompatible',
          `the datapath at ${pinDir} speaks ABI ${info?.abiVersion ?? 'unknown'}, this xlb ABI ` +
            `${ABI_VERSION}: use the xlb binary of the agent that runs it`,
        );
      }
      if (info.config.length < XlbConfig.size) {
        throw new PinnedDatapathError(
          'incompatible',
          `the datapath at ${pinDir} has a settings record of ${info.config.length} bytes, ` +
            `${XlbConfig.size} expected`,
        );
      }
      const config = XlbConfig.decode(info.config);
      const dm = new DatapathMaps(maps as Record<MapName, BpfMap>);
      let ids: DatapathIds | undefined;
      if (existsSync(join(pinDir, ID_MAP_PIN))) {
        const idMap = openPin(ID_MAP_PIN);
        if (isIdMap(idMap)) {
          try {
            ids = DatapathIds.open(new ReadOnlyIdStore(idMap), idCapacities(dm));
          } catch (e) {
            if (!(e instanceof IdMapError)) throw e;
          }
        }
      }
      const pinned = new PinnedDatapath(pinDir, dm, config.hash_seed, ids);
      // The maps are owned by `dm` now; the info and id maps were read in full.
      for (const m of opened) if (!Object.values(maps).includes(m)) m.close();
      return pinned;
    } catch (e) {
      for (const m of opened) m.close();
      throw e;
    }
  }

  /** The unit (service) id a backend id was claimed under, or 0 when unknown. */
  serviceOfBackend(backendId: number): number {
    return this.ids?.parentOf('backend', backendId) ?? 0;
  }

  close(): void {
    this.maps.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
