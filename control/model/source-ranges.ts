// loadBalancerSourceRanges, or the older annotation when the field is empty
// (the field wins, as in kube-proxy). Ranges are all-or-nothing per Service:
// once any valid range exists, every unit enforces them, so an IPv6 unit of a
// Service that lists only IPv4 ranges admits nobody. That is the Kubernetes
// meaning: the list names who may connect, and no IPv6 client is named.
import type { V1Service } from '@kubernetes/client-node';

import { asArray, asRecord, asString, asStringMap, compareStrings } from './guards.js';
import { parseCidr } from './ip.js';
import type { Finding } from './reasons.js';
import type { Family } from './types.js';

export const SOURCE_RANGES_ANNOTATION = 'service.beta.kubernetes.io/load-balancer-source-ranges';

export interface ServiceSourceRanges {
  enforced: boolean;
  /** Canonical, sorted, without duplicates. */
  byFamily: Record<Family, string[]>;
  findings: Finding[];
}

export function sourceRanges(service: V1Service): ServiceSourceRanges {
  const svc = asRecord(service);
  const field = asArray(asRecord(svc?.['spec'])?.['loadBalancerSourceRanges']);
  let entries: unknown[] = field;
  let origin = 'spec.loadBalancerSourceRanges';
  if (field.length === 0) {
    const annotation = asStringMap(asRecord(svc?.['metadata'])?.['annotations'])[
      SOURCE_RANGES_ANNOTATION
    ];
    entries = annotation === undefined ? [] : annotation.split(',');
    origin = `annotation ${SOURCE_RANGES_ANNOTATION}`;
  }
  const byFamily: Record<Family, Set<string>> = { 4: new Set(), 6: new Set() };
  const findings: Finding[] = [];
  for (const entry of entries) {
    const text = asString(entry)?.trim();
    // An empty element is a stray comma ("a, b,"), not a range someone meant.
    if (text === '') continue;
    const cidr = parseCidr(text);
    if (cidr === undefined) {
      findings.push({
        reason: 'invalidSourceRange',
        message: `${origin}: ${text === undefined ? String(entry) : JSON.stringify(text)} is not a CIDR; ignored`,
      });
      continue;
    }
    byFamily[cidr.family].add(cidr.cidr);
  }
  const sorted = (s: Set<string>): string[] => [...s].sort(compareStrings);
  return {
    enforced: byFamily[4].size + byFamily[6].size > 0,
    byFamily: { 4: sorted(byFamily[4]), 6: sorted(byFamily[6]) },
    findings,
  };
}
