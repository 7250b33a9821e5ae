// What the demo reports, read from the things themselves: the router's kernel
// routes, BIRD's table, the agents' /status, the pods' answers. Nothing here
// assumes a result; every number the demo prints comes through these.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { BpfMap } from '../../native/index.js';
import { XlbFlowKey } from '../datapath/abi.js';
import { fromDatapathAddress } from '../datapath/address.js';
import type { Family } from '../model/types.js';

import type { AgentStatus } from '../status/index.js';
import { birdProtocol } from '../topology/bgp-router.js';
import type { BirdProcess } from '../topology/bird.js';
import { nodeAddresses, type ProbeAnswer } from '../topology/cluster.js';
import { NODE_COUNT, nodeName } from './cluster.js';

export interface NextHop {
  gateway: string;
  /** The node that owns the gateway address, or '?' when none does. */
  node: string;
  /** Kernel flags on the next hop, e.g. 'linkdown'. */
  flags: string[];
}

/** The node whose uplink has `address`. */
export function nodeOfAddress(address: string): string {
  for (let i = 0; i < NODE_COUNT; i++) if (nodeAddresses(i).v4 === address) return nodeName(i);
  return '?';
}

interface JsonRoute {
  gateway?: string;
  flags?: string[];
  nexthops?: Array<{ gateway?: string; flags?: string[] }>;
}

/** The next hops of the router's kernel route to vip/32 (`ip -j route show`), sorted by node. */
export function routerNextHops(routerNs: string, vip: string): NextHop[] {
  const r = spawnSync('ip', ['-j', '-n', routerNs, 'route', 'show', `${vip}/32`], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (r.status !== 0) throw new Error(`ip route show in ${routerNs} failed: ${r.stderr.trim()}`);
  const routes = JSON.parse(r.stdout || '[]') as JsonRoute[];
  const hops: NextHop[] = [];
  for (const route of routes) {
    const list = route.nexthops ?? [{ gateway: route.gateway, flags: route.flags }];
    for (const h of list)
      if (h.gateway)
        hops.push({ gateway: h.gateway, node: nodeOfAddress(h.gateway), flags: h.flags ?? [] });
  }
  return hops.sort((a, b) => a.node.localeCompare(b.node));
}

/** The router's route as `ip route` prints it, for the user to compare. */
export function routerRouteText(routerNs: string, vip: string): string[] {
  const r = spawnSync('ip', ['-n', routerNs, 'route', 'show', `${vip}/32`], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.replace(/^\s+/, '    ').trimEnd());
}

/** The nodes whose BGP sessions gave BIRD a route to vip/32 (`birdc show route all`). */
export function birdAnnouncers(bird: BirdProcess, vip: string): string[] {
  const out = bird.birdcOutput(`show route ${vip}/32 all`);
  const nodes = new Set<string>();
  for (const m of out.matchAll(/\[(node\d+)[ \]]/g)) {
    for (let i = 0; i < NODE_COUNT; i++) if (birdProtocol(i) === m[1]) nodes.add(nodeName(i));
  }
  return [...nodes].sort();
}

/** BIRD's BGP state with node i ('Established', 'Active', ...), or 'unknown'. */
export function birdSessionState(bird: BirdProcess, i: number): string {
  try {
    return bird.bgpState(birdProtocol(i)) ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** BIRD's last error for its session with node i (e.g. 'Error: Link down', 'BFD session down'), or ''. */
export function birdLastError(bird: BirdProcess, i: number): string {
  try {
    const out = bird.birdcOutput(`show protocols all ${birdProtocol(i)}`);
    return /Last error:\s+(.+)/.exec(out)?.[1]?.trim() ?? '';
  } catch {
    return '';
  }
}

/**
 * The client ports of the flows to vip:port in a node's connection table
 * (its pinned xlb_conntrack): the connections that node has balanced. The
 * pins outlive a killed agent, so a dead node's table can still be read.
 */
export function connectionTablePorts(pinDir: string, vip: string, port: number): Set<number> {
  const ports = new Set<number>();
  const path = join(pinDir, 'xlb_conntrack');
  if (!existsSync(path)) return ports;
  using map = BpfMap.openPinned(path);
  for (const k of map.keys()) {
    const key = XlbFlowKey.decode(k);
    if (key.dport_be === port && fromDatapathAddress(key.dst, key.family as Family) === vip)
      ports.add(key.sport_be);
  }
  return ports;
}

export async function agentStatus(url: string): Promise<AgentStatus> {
  const res = await fetch(`${url}/status`, { signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`${url}/status answered ${res.status}`);
  return (await res.json()) as AgentStatus;
}

/** The Service's backends in an agent's model, as pod addresses, sorted. */
export function agentBackends(status: AgentStatus, service: string): string[] {
  const addresses = new Set<string>();
  for (const s of status.services)
    if (s.service.endsWith(`/${service}`))
      for (const b of s.backends) if (b.state === 'active') addresses.add(b.address);
  return [...addresses].sort();
}

/** Whether the agent's datapath has a frontend on `vip`. */
export function agentServesVip(status: AgentStatus, vip: string): boolean {
  return status.services.some((s) => s.frontends.some((f) => f.startsWith(`${vip}:`)));
}

export interface PodTally {
  pod: string;
  requests: number;
  /** Every client address the pod reported. */
  clients: string[];
}

export interface RequestTally {
  sent: number;
  answered: number;
  errors: string[];
  pods: PodTally[];
}

/** Counts answers per pod, with the client addresses each pod saw. */
export function tally(answers: ReadonlyArray<ProbeAnswer | { error: string }>): RequestTally {
  const pods = new Map<string, { requests: number; clients: Set<string> }>();
  const errors: string[] = [];
  for (const a of answers) {
    if ('error' in a) {
      errors.push(a.error);
      continue;
    }
    const p = pods.get(a.body.pod) ?? { requests: 0, clients: new Set<string>() };
    p.requests++;
    p.clients.add(a.body.client);
    pods.set(a.body.pod, p);
  }
  return {
    sent: answers.length,
    answered: answers.length - errors.length,
    errors,
    pods: [...pods.entries()]
      .map(([pod, p]) => ({ pod, requests: p.requests, clients: [...p.clients].sort() }))
      .sort((a, b) => a.pod.localeCompare(b.pod, undefined, { numeric: true })),
  };
}
