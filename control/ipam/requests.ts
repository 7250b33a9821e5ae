// What a Service asks of the allocator, read from its spec, annotations and
// status. Never throws: whatever is malformed becomes a problem sentence, and
// a Service with problems gets no new address (it keeps what it validly holds,
// so a typo in an annotation does not take a running Service's address away).
import type { V1Service } from '@kubernetes/client-node';

import {
  asArray,
  asRecord,
  asString,
  asStringMap,
  compareStrings,
  isPortNumber,
  objectKey,
} from '../model/guards.js';
import { parseIp } from '../model/ip.js';
import type { Family } from '../model/types.js';
import { addressToBigInt, parseIP } from '../resources/addresses.js';

import { creationTime } from './order.js';

/**
 * The annotations read, most authoritative first. MetalLB's are honoured so
 * Services move over unedited; both its current (metallb.io) and its older
 * (metallb.universe.tf) prefixes. When several are set they must agree.
 */
export const ANNOTATIONS = {
  ips: [
    'xlb.dev/load-balancer-ips',
    'metallb.io/loadBalancerIPs',
    'metallb.universe.tf/loadBalancerIPs',
  ],
  pool: ['xlb.dev/address-pool', 'metallb.io/address-pool', 'metallb.universe.tf/address-pool'],
  sharingKey: [
    'xlb.dev/allow-shared-ip',
    'metallb.io/allow-shared-ip',
    'metallb.universe.tf/allow-shared-ip',
  ],
} as const;

export type FamilyPolicy = 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';

export interface Address {
  family: Family;
  /** Canonical text. */
  address: string;
  value: bigint;
}

export interface ServiceRequest {
  /** `namespace/name`. */
  key: string;
  namespace: string;
  created: number;
  labels: Record<string, string>;
  /** deletionTimestamp set: keeps what it holds until its finalizer goes, gets nothing new. */
  deleting: boolean;
  /** The families it should have an address of, primary first. */
  families: Family[];
  policy: FamilyPolicy;
  /** Explicitly requested addresses, per family; empty when none are. */
  ips: Map<Family, Address>;
  /** Where the request came from, for messages. */
  ipsSource?: string;
  pool?: string;
  poolSource?: string;
  sharingKey?: string;
  /** `port/PROTOCOL` of every service port, for sharing. */
  ports: Set<string>;
  trafficPolicy: string;
  /** spec.selector in a canonical form, for sharing under the Local policy. */
  selector: string;
  /** The addresses it holds (status, or the caller's in-flight view), in order. */
  held: Address[];
  /** status.loadBalancer.ingress[].ip as written. */
  statusIps: string[];
  /** Why the request cannot be served as written; empty when it can. */
  problems: string[];
}

export const familyName = (f: Family): string => (f === 4 ? 'IPv4' : 'IPv6');

function toAddress(text: unknown): Address | undefined {
  const p = parseIp(text);
  if (p === undefined) return undefined;
  const parsed = parseIP(p.address);
  if (parsed === undefined) return undefined;
  return { family: p.family, address: p.address, value: addressToBigInt(parsed) };
}

/** The first source, by precedence, that is set; a problem when later ones say otherwise. */
function firstOf(
  sources: readonly { name: string; value: string | undefined; same?: string }[],
  problems: string[],
): { name: string; value: string } | undefined {
  const set = sources.filter(
    (s): s is { name: string; value: string; same?: string } => s.value !== undefined,
  );
  const first = set[0];
  if (first === undefined) return undefined;
  for (const other of set.slice(1)) {
    if ((other.same ?? other.value) !== (first.same ?? first.value))
      problems.push(
        `${first.name} ('${first.value}') and ${other.name} ('${other.value}') disagree: keep one`,
      );
  }
  return first;
}

function readIps(
  source: string,
  value: string,
  problems: string[],
): Map<Family, Address> | undefined {
  const ips = new Map<Family, Address>();
  let ok = true;
  // Empty items are tolerated: a trailing comma is a typo, not a request.
  const items = value.split(',').map((s) => s.trim());
  for (const item of items.filter((s) => s !== '')) {
    const a = toAddress(item);
    if (a === undefined) {
      problems.push(`${source}: '${item}' is not an IP address`);
      ok = false;
    } else if (ips.has(a.family)) {
      problems.push(`${source} names more than one ${familyName(a.family)} address`);
      ok = false;
    } else ips.set(a.family, a);
  }
  return ok ? ips : undefined;
}

/** Canonical key of a set of addresses, to compare sources. */
const ipsKey = (ips: Map<Family, Address> | undefined): string =>
  ips === undefined
    ? '?'
    : [...ips.values()]
        .map((a) => a.address)
        .sort(compareStrings)
        .join(',');

function readFamilies(
  spec: Record<string, unknown>,
  ips: Map<Family, Address>,
  problems: string[],
): { families: Family[]; policy: FamilyPolicy } {
  const rawPolicy = spec['ipFamilyPolicy'];
  let policy: FamilyPolicy = 'SingleStack';
  if (
    rawPolicy === 'SingleStack' ||
    rawPolicy === 'PreferDualStack' ||
    rawPolicy === 'RequireDualStack'
  )
    policy = rawPolicy;
  else if (rawPolicy !== undefined && rawPolicy !== null)
    problems.push(
      `spec.ipFamilyPolicy ${JSON.stringify(rawPolicy)} is not SingleStack, PreferDualStack or RequireDualStack`,
    );
  const listed: Family[] = [];
  for (const [i, raw] of asArray(spec['ipFamilies']).entries()) {
    const f = raw === 'IPv4' ? 4 : raw === 'IPv6' ? 6 : undefined;
    if (f === undefined)
      problems.push(`spec.ipFamilies[${i}] ${JSON.stringify(raw)} is not IPv4 or IPv6`);
    else if (listed.includes(f)) problems.push(`spec.ipFamilies lists ${familyName(f)} twice`);
    else listed.push(f);
  }
  // The API server always fills ipFamilies; a Service from a YAML directory may
  // leave it out, and then its requested address (or IPv4) is the primary.
  const primary = listed[0] ?? [...ips.keys()][0] ?? 4;
  const other: Family = primary === 4 ? 6 : 4;
  const families: Family[] =
    policy === 'SingleStack'
      ? [primary]
      : listed.length === 2
        ? listed
        : policy === 'RequireDualStack' || listed.length === 0
          ? [primary, other]
          : // PreferDualStack with one family listed: the cluster is single-stack.
            [primary];
  return { families, policy };
}

export function readRequest(
  service: V1Service,
  inFlight: ReadonlyMap<string, readonly string[]> | undefined,
): ServiceRequest {
  const svc = asRecord(service) ?? {};
  const metadata = asRecord(svc['metadata']) ?? {};
  const spec = asRecord(svc['spec']) ?? {};
  const { namespace, name } = objectKey(metadata);
  const key = `${namespace}/${name ?? ''}`;
  const annotations = asStringMap(metadata['annotations']);
  const problems: string[] = [];

  const ipSources = [
    ...ANNOTATIONS.ips.map((a) => ({ name: `annotation ${a}`, text: annotations[a] })),
    { name: 'spec.loadBalancerIP', text: asString(spec['loadBalancerIP']) },
  ]
    .filter((s) => s.text !== undefined && s.text.trim() !== '')
    .map((s) => {
      const parsed = readIps(s.name, s.text!, problems);
      return { name: s.name, value: s.text!, same: ipsKey(parsed), parsed };
    });
  const ipsPick = firstOf(ipSources, problems);
  const ips = ipSources.find((s) => s.name === ipsPick?.name)?.parsed ?? new Map<Family, Address>();

  const named = (list: readonly string[]) =>
    list.map((a) => {
      const v = annotations[a]?.trim();
      return { name: `annotation ${a}`, value: v === '' ? undefined : v };
    });
  const pool = firstOf(named(ANNOTATIONS.pool), problems);
  const sharing = firstOf(named(ANNOTATIONS.sharingKey), problems);

  const { families, policy } = readFamilies(spec, ips, problems);
  for (const a of ips.values()) {
    if (!families.includes(a.family))
      problems.push(
        `${ipsPick!.name} asks for ${familyName(a.family)} address ${a.address}, but the Service's IP families are ${families.map(familyName).join(', ')}`,
      );
  }
  if (policy === 'RequireDualStack' && ips.size === 1)
    problems.push(
      `${ipsPick!.name} names one address, but RequireDualStack needs one of each family`,
    );

  const ports = new Set<string>();
  for (const p of asArray(spec['ports'])) {
    const port = asRecord(p);
    const number = port?.['port'];
    if (isPortNumber(number)) ports.add(`${number}/${asString(port?.['protocol']) ?? 'TCP'}`);
  }
  const selector = Object.entries(asStringMap(spec['selector']))
    .sort(([a], [b]) => compareStrings(a, b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

  const statusIps = asArray(
    asRecord(asRecord(asRecord(svc['status'])?.['loadBalancer']))?.['ingress'],
  )
    .map((i) => asString(asRecord(i)?.['ip']))
    .filter((ip): ip is string => ip !== undefined);
  const heldTexts = inFlight?.get(key) ?? statusIps;
  const held: Address[] = [];
  for (const a of heldTexts.map(toAddress)) {
    if (a !== undefined && !held.some((h) => h.address === a.address)) held.push(a);
  }

  return {
    key,
    namespace,
    created: creationTime(metadata),
    labels: asStringMap(metadata['labels']),
    deleting: metadata['deletionTimestamp'] !== undefined && metadata['deletionTimestamp'] !== null,
    families,
    policy,
    ips,
    ...(ipsPick !== undefined ? { ipsSource: ipsPick.name } : {}),
    ...(pool !== undefined ? { pool: pool.value, poolSource: pool.name } : {}),
    ...(sharing !== undefined ? { sharingKey: sharing.value } : {}),
    ports,
    trafficPolicy: asString(spec['externalTrafficPolicy']) ?? 'Cluster',
    selector,
    held,
    statusIps,
    problems,
  };
}
