// What the datapath's maps hold, read through descriptors of their own
// (opened from the pins), so the benchmark checks the kernel's state, not
// what the reconciler believes it wrote.
import { join } from 'node:path';

import { key32 } from '../../control/datapath/codec.js';
import { DatapathMaps, mapNames, type MapName } from '../../control/datapath/maps.js';
import { readTrailer } from '../../control/datapath/plan.js';
import { BpfMap } from '../../native/index.js';

export interface MapCounts {
  vips: number;
  frontends: number;
  backends: { active: number; terminating: number };
  tables: number;
}

export class PinnedMaps implements Disposable {
  readonly maps: DatapathMaps;

  constructor(pinDir: string) {
    const opened: Partial<Record<MapName, BpfMap>> = {};
    try {
      for (const name of mapNames) opened[name] = BpfMap.openPinned(join(pinDir, name));
    } catch (e) {
      for (const m of Object.values(opened)) m.close();
      throw e;
    }
    this.maps = new DatapathMaps(opened as Record<MapName, BpfMap>);
  }

  counts(): MapCounts {
    let active = 0;
    let terminating = 0;
    for (const b of this.maps.backendEntries()) {
      if (b.backend.state === 'active') active++;
      else terminating++;
    }
    let vips = 0;
    for (const _ of this.maps.vips()) vips++;
    let frontends = 0;
    for (const _ of this.maps.map('xlb_frontends').keys()) frontends++;
    return {
      vips,
      frontends,
      backends: { active, terminating },
      tables: this.maps.maglevServiceIds().length,
    };
  }

  /**
   * A service's installed table: its size M (slot 0), the backend ids its
   * trailer says it names, and whether `samples` slots spread over 1..M,
   * read one by one, name only those. Reading all M slots per check (two
   * Buffers a slot through a batch read) would be the benchmark's own
   * memory, counted as the control plane's.
   */
  table(
    serviceId: number,
    samples = 257,
  ): { size: number; ids: Set<number>; slotsOk: boolean } | undefined {
    const summary = this.maps.maglevTableTrailer(serviceId);
    const recorded = summary && readTrailer(summary.trailer);
    if (summary === undefined || recorded === undefined) return undefined;
    const ids = new Set(recorded.ids);
    const header = this.maps.maglevTableHeader(serviceId);
    using inner = this.maps.map('xlb_maglev').innerMap(key32(serviceId));
    let slotsOk = inner !== undefined && header !== undefined;
    for (let k = 0; k < samples && slotsOk; k++) {
      const slot = 1 + Math.floor((k * (summary.size - 1)) / (samples - 1));
      const id = inner!.lookup(key32(slot))?.readUInt32LE(4 * header!.half);
      slotsOk = id !== undefined && ids.has(id);
    }
    return { size: summary.size, ids, slotsOk };
  }

  /** The backend in a slot of xlb_backends, or undefined when it is gone. */
  backend(id: number) {
    const raw = this.maps.map('xlb_backends').lookup(key32(id));
    if (raw === undefined || raw.every((b) => b === 0)) return undefined;
    return raw;
  }

  [Symbol.dispose](): void {
    this.maps.close();
  }
}
