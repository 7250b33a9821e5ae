// One Service -> its units on this node, its announce decisions and the
// reasons behind both. Usable alone for incremental updates; deriveNode adds
// what needs every Service at once (frontend conflicts, duplicates).
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import { sessionAffinity } from './affinity.js';
import { announcements } from './announce.js';
import { serviceSlices, unitBackends, type UnitPort } from './endpoints.js';
import { asArray, asRecord, asString, compareStrings, isPortNumber, objectKey } from './guards.js';
import { familyTag, parseIp } from './ip.js';
import type { NodeIndex } from './nodes.js';
import { resolveOptions } from './options.js';
import { classifyService } from './ownership.js';
import { severityOf, type Finding } from './reasons.js';
import { sourceRanges } from './source-ranges.js';
import { tableSize, tableSizeFinding } from './table-size.js';
import type {
  Decision,
  Family,
  ModelOptions,
  Protocol,
  ServiceModel,
  TrafficPolicy,
  Unit,
} from './types.js';

export interface ServiceInput {
  service: V1Service;
  /** The Service's slices; others are ignored, so passing all of them is fine. */
  endpointSlices: readonly V1EndpointSlice[];
  nodes: NodeIndex;
  nodeName: string;
  options?: Partial<ModelOptions>;
}

/** `namespace/name` of a Service, the key its decisions and units carry. */
export function serviceKey(service: V1Service): string {
  const { namespace, name } = objectKey(asRecord(service)?.['metadata']);
  return `${namespace}/${name ?? ''}`;
}

export function unitKey(
  service: string,
  port: { name: string; number: number },
  protocol: Protocol,
  family: Family,
): string {
  return `${service}:${port.name === '' ? String(port.number) : port.name}/${protocol}/${familyTag(family)}`;
}

interface ServicePort extends UnitPort {
  number: number;
}

function servicePorts(spec: Record<string, unknown>, findings: Finding[]): ServicePort[] {
  const raw = asArray(spec['ports']);
  if (raw.length === 0) {
    findings.push({ reason: 'noPorts', message: 'the Service lists no ports' });
    return [];
  }
  const ports: ServicePort[] = [];
  const seen = new Set<string>();
  for (const [i, entry] of raw.entries()) {
    const p = asRecord(entry);
    const name = asString(p?.['name']) ?? '';
    const number = p?.['port'];
    // Absent means TCP (the API default); present but not a string is not TCP.
    const rawProtocol = p?.['protocol'];
    const protocol =
      rawProtocol === undefined || rawProtocol === null
        ? 'TCP'
        : (asString(rawProtocol) ?? JSON.stringify(rawProtocol));
    const label = `port ${name === '' ? `#${i}` : name} (${String(number)}/${protocol})`;
    if (!isPortNumber(number)) {
      findings.push({ reason: 'invalidPort', message: `${label}: not a port number; skipped` });
      continue;
    }
    if (protocol !== 'TCP' && protocol !== 'UDP') {
      findings.push({
        reason: 'unsupportedProtocol',
        message: `${label}: xlb balances TCP and UDP only; skipped`,
      });
      continue;
    }
    const id = `${name === '' ? String(number) : name}/${protocol}`;
    if (seen.has(id)) {
      findings.push({
        reason: 'duplicatePort',
        message: `${label}: another port already has this name and protocol; skipped`,
      });
      continue;
    }
    seen.add(id);
    ports.push({ name, number, protocol });
  }
  return ports;
}

function trafficPolicy(spec: Record<string, unknown>, findings: Finding[]): TrafficPolicy {
  const policy = asString(spec['externalTrafficPolicy']) ?? '';
  if (policy === 'Local') return 'Local';
  if (policy !== 'Cluster' && policy !== '') {
    findings.push({
      reason: 'unknownTrafficPolicy',
      message: `externalTrafficPolicy ${policy} is not Cluster or Local; using Cluster`,
    });
  }
  return 'Cluster';
}

/** The valid LB IPs from status, canonical, without duplicates, IPv4 first. */
function lbAddresses(
  service: Record<string, unknown>,
  findings: Finding[],
): { family: Family; address: string }[] {
  const ingress = asArray(asRecord(asRecord(service['status'])?.['loadBalancer'])?.['ingress']);
  const found = new Map<string, { family: Family; address: string }>();
  for (const entry of ingress) {
    const e = asRecord(entry);
    const ip = e?.['ip'];
    if (ip === undefined || ip === '') {
      // A hostname names some other load balancer; nothing to program here.
      findings.push({
        reason: 'ingressWithoutIp',
        message: `status.loadBalancer.ingress entry ${JSON.stringify(entry) ?? ''} has no ip; ignored`,
      });
      continue;
    }
    const parsed = parseIp(ip);
    if (parsed === undefined) {
      findings.push({
        reason: 'invalidIngressAddress',
        message: `status.loadBalancer.ingress ip ${JSON.stringify(ip)} is not an IP address; ignored`,
      });
      continue;
    }
    found.set(parsed.address, parsed);
  }
  return [...found.values()].sort(
    (a, b) => a.family - b.family || compareStrings(a.address, b.address),
  );
}

export function deriveService(input: ServiceInput): ServiceModel {
  const options = resolveOptions(input.options);
  const key = serviceKey(input.service);
  const ownership = classifyService(input.service, options);
  if (!ownership.owned) {
    return {
      service: key,
      ownership,
      units: [],
      announcements: [],
      decisions: [toDecision(key, ownership)],
    };
  }
  // classifyService has checked that both exist.
  const svc = asRecord(input.service) ?? {};
  const spec = asRecord(svc['spec']) ?? {};
  const { namespace, name } = objectKey(svc['metadata']);

  const findings: { finding: Finding; unit?: string }[] = [];
  const serviceFindings: Finding[] = [];
  const ports = servicePorts(spec, serviceFindings);
  const policy = trafficPolicy(spec, serviceFindings);
  const affinity = sessionAffinity(spec);
  const ranges = sourceRanges(input.service);
  const size = tableSize(input.service);
  const addresses = lbAddresses(svc, serviceFindings);
  serviceFindings.push(...affinity.findings, ...ranges.findings, ...size.findings);
  if (addresses.length === 0) {
    serviceFindings.push({
      reason: 'noAddress',
      message: 'no LB IP in status.loadBalancer.ingress yet; nothing to serve or announce',
    });
  }
  findings.push(...serviceFindings.map((finding) => ({ finding })));

  const slices = serviceSlices(input.endpointSlices, namespace, name ?? '');
  const ctx = { nodeName: input.nodeName, nodes: input.nodes, policy };
  const units: Unit[] = [];
  const families = [...new Set(addresses.map((a) => a.family))];
  for (const family of families) {
    const vips = addresses.filter((a) => a.family === family).map((a) => a.address);
    for (const port of ports) {
      const uk = unitKey(key, port, port.protocol, family);
      const resolved = unitBackends(slices, port, family, ctx);
      findings.push(...resolved.findings.map((finding) => ({ finding })));
      const small = tableSizeFinding(size.size, resolved.backends.length);
      if (small !== undefined) findings.push({ finding: small, unit: uk });
      units.push({
        key: uk,
        service: key,
        portName: port.name,
        servicePort: port.number,
        protocol: port.protocol,
        family,
        trafficPolicy: policy,
        frontends: vips.map((address) => ({ address, port: port.number, protocol: port.protocol })),
        backends: resolved.backends,
        excluded: resolved.excluded,
        ...(affinity.timeoutSeconds !== undefined
          ? { affinityTimeoutSeconds: affinity.timeoutSeconds }
          : {}),
        sourceRanges: { enforced: ranges.enforced, cidrs: ranges.byFamily[family] },
        tableSize: size.size,
      });
    }
  }
  units.sort((a, b) => compareStrings(a.key, b.key));

  return {
    service: key,
    ownership,
    units,
    announcements: announcements({
      service: key,
      addresses,
      units,
      policy,
      node: input.nodes.get(input.nodeName),
    }),
    decisions: dedupe(findings.map(({ finding, unit }) => toDecision(key, finding, unit))),
  };
}

export function toDecision(service: string, finding: Finding, unit?: string): Decision {
  return {
    service,
    reason: finding.reason,
    severity: severityOf(finding.reason),
    message: finding.message,
    ...(unit !== undefined ? { unit } : {}),
  };
}

/** One endpoint's problem shows up once per port; say it once. */
function dedupe(decisions: Decision[]): Decision[] {
  const seen = new Set<string>();
  return decisions.filter((d) => {
    const id = JSON.stringify([d.reason, d.unit ?? '', d.message]);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
