// Maglev table size per Service: the annotation when it is a usable prime,
// the default otherwise.
import type { V1Service } from '@kubernetes/client-node';

import { checkTableSize, DEFAULT_TABLE_SIZE, TableSizeError } from '../maglev/primes.js';
import { asRecord, asStringMap } from './guards.js';
import type { Finding } from './reasons.js';

export const TABLE_SIZE_ANNOTATION = 'xlb.dev/maglev-table-size';

/** The paper's bound: M >= 100 N keeps each backend's share within about 1% of the mean. */
export const SLOTS_PER_BACKEND = 100;

export function tableSize(service: V1Service): { size: number; findings: Finding[] } {
  const text = asStringMap(asRecord(asRecord(service)?.['metadata'])?.['annotations'])[
    TABLE_SIZE_ANNOTATION
  ];
  if (text === undefined) return { size: DEFAULT_TABLE_SIZE, findings: [] };
  const invalid = (why: string): { size: number; findings: Finding[] } => ({
    size: DEFAULT_TABLE_SIZE,
    findings: [
      {
        reason: 'invalidMaglevTableSize',
        message: `annotation ${TABLE_SIZE_ANNOTATION}=${JSON.stringify(text)}: ${why}; using ${DEFAULT_TABLE_SIZE}`,
      },
    ],
  });
  if (!/^[0-9]+$/.test(text.trim())) return invalid('not a whole number');
  const size = Number(text.trim());
  try {
    checkTableSize(size);
  } catch (e) {
    if (e instanceof TableSizeError) return invalid(e.message);
    throw e;
  }
  return { size, findings: [] };
}

export function tableSizeFinding(size: number, backends: number): Finding | undefined {
  if (size >= SLOTS_PER_BACKEND * backends) return undefined;
  return {
    reason: 'maglevTableSmall',
    message: `Maglev table of ${size} slots for ${backends} backends: fewer than ${SLOTS_PER_BACKEND} slots each, so shares are uneven${size < backends ? ' and the table cannot hold them all' : ''}; set ${TABLE_SIZE_ANNOTATION} to a larger prime`,
  };
}
