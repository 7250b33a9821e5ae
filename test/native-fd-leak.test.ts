import { mkdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { bpfObjectPath } from '../control/paths.js';
import { BpfMap, BpfObject, BpfProgram } from '../native/index.js';
import { openFdCount } from './support/fds.js';
import { requirePrivileges } from './support/privileged.js';

describe('descriptor hygiene', () => {
  const pinDir = `/sys/fs/bpf/xlb-test-${randomBytes(4).toString('hex')}`;
  beforeAll(() => {
    requirePrivileges('native-fd-leak');
    mkdirSync(pinDir, { recursive: true });
  });
  afterAll(() => rmSync(pinDir, { recursive: true, force: true }));

  it('opens and closes 10,000 objects without leaking a descriptor', () => {
    // One loaded object supplies program and map descriptors to duplicate.
    const template = BpfObject.open(bpfObjectPath('test/fixture'));
    template.load();
    const templateMap = template.map('fixture_array');
    const templateProg = template.program('fixture_xdp');
    templateMap.pin(`${pinDir}/map`);
    templateProg.pin(`${pinDir}/prog`);

    const before = openFdCount();
    const kinds = {
      objectLoads: 0,
      objectOpens: 0,
      mapCreates: 0,
      pinnedMaps: 0,
      pinnedProgs: 0,
      byId: 0,
      innerMaps: 0,
    };
    for (let i = 0; i < 10_000; i++) {
      switch (i % 10) {
        case 0: {
          // A full load: every map and program of the object, then their duplicates.
          using obj = BpfObject.open(bpfObjectPath('test/fixture'));
          obj.load();
          using p = obj.program('fixture_xdp');
          using m = obj.map('fixture_hash');
          expect(p.info.id).toBeGreaterThan(0);
          expect(m.info.id).toBeGreaterThan(0);
          kinds.objectLoads++;
          break;
        }
        case 1:
        case 2: {
          using obj = BpfObject.open(bpfObjectPath('test/fixture'));
          expect(obj.programs()).toHaveLength(3);
          kinds.objectOpens++;
          break;
        }
        case 3:
        case 4: {
          using m = BpfMap.create({
            type: 'hash',
            name: 'leak_test',
            keySize: 4,
            valueSize: 4,
            maxEntries: 4,
          });
          expect(m.fd).toBeGreaterThan(2);
          kinds.mapCreates++;
          break;
        }
        case 5:
        case 6: {
          using m = BpfMap.openPinned(`${pinDir}/map`);
          expect(m.info.id).toBe(templateMap.info.id);
          kinds.pinnedMaps++;
          break;
        }
        case 7: {
          using p = BpfProgram.openPinned(`${pinDir}/prog`);
          expect(p.info.id).toBe(templateProg.info.id);
          kinds.pinnedProgs++;
          break;
        }
        case 8: {
          using m = BpfMap.fromId(templateMap.info.id);
          using p = BpfProgram.fromId(templateProg.info.id);
          expect(m.info.name).toBe('fixture_array');
          expect(p.info.name).toBe('fixture_xdp');
          kinds.byId++;
          break;
        }
        default: {
          using inner = BpfMap.create({
            type: 'array',
            name: 'leak_inner',
            keySize: 4,
            valueSize: 4,
            maxEntries: 8,
          });
          using outer = BpfMap.create({
            type: 'arrayOfMaps',
            name: 'leak_outer',
            keySize: 4,
            valueSize: 4,
            maxEntries: 2,
            innerMap: inner,
          });
          outer.setInnerMap(Buffer.alloc(4), inner);
          using back = outer.innerMap(Buffer.alloc(4))!;
          expect(back.info.id).toBe(inner.info.id);
          kinds.innerMaps++;
          break;
        }
      }
    }
    const after = openFdCount();
    templateMap.close();
    templateProg.close();
    template.close();

    expect(Object.values(kinds).reduce((a, b) => a + b, 0)).toBe(10_000);
    expect(after - before).toBe(0);
  });

  it('refuses to use a closed descriptor instead of touching a recycled one', () => {
    const m = BpfMap.create({
      type: 'array',
      name: 'closed_test',
      keySize: 4,
      valueSize: 4,
      maxEntries: 1,
    });
    m.close();
    expect(m.closed).toBe(true);
    expect(() => m.lookup(Buffer.alloc(4))).toThrow(/BpfMap is closed/);
    m.close(); // idempotent
  });
});
