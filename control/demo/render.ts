// Text the demo shows: the topology as a small diagram, the tables of
// requests and connections, the summary. Pure: everything shown is passed in.
import { renderTable } from '../cli/table.js';
import { BED, nodeAddresses } from '../topology/cluster.js';
import { ROUTER_AS, NODE_AS } from '../topology/bgp-router.js';
import { BFD, NODE_COUNT, nodeName, type PodSpec } from './cluster.js';
import type { NextHop, RequestTally } from './observe.js';
import type { Check } from './progress.js';

export function topologyDiagram(pods: readonly PodSpec[], nsPrefix: string): string[] {
  const onNode = (i: number): string =>
    pods
      .filter((p) => p.node === i)
      .map((p) => p.name)
      .join(', ');
  const nodes = Array.from({ length: NODE_COUNT }, (_, i) => {
    const a = nodeAddresses(i);
    const branch = i === NODE_COUNT - 1 ? '└─' : '├─';
    return `        ${branch} ${a.name.padEnd(6)} ${a.v4.padEnd(13)} xlb agent, XDP on eth0   pods: ${onNode(i)}`;
  });
  return [
    `client  ${BED.client.v4}`,
    `  │`,
    `router  ${BED.router.clientV4}   BIRD (AS ${ROUTER_AS}), ECMP over the nodes, BFD ${BFD.intervalMs} ms x ${BFD.multiplier}`,
    ...nodes,
    '',
    `nodes speak BGP as AS ${NODE_AS}; namespaces: ${nsPrefix}*`,
  ];
}

export const hopsText = (hops: readonly NextHop[]): string =>
  hops.length === 0
    ? '(no route)'
    : hops
        .map((h) => `${h.gateway} (${h.node}${h.flags.length > 0 ? `, ${h.flags.join(',')}` : ''})`)
        .join(', ');

/** One row per pod: how many requests it answered and which client address it saw. */
export function requestTable(
  service: string,
  t: RequestTally,
  nodeOfPod: (pod: string) => string,
): string[] {
  return renderTable(
    ['service', 'pod', 'node', 'requests', 'client address seen'],
    t.pods.map((p) => [service, p.pod, nodeOfPod(p.pod), String(p.requests), p.clients.join(', ')]),
  );
}

export function summaryTable(checks: readonly Check[]): string[] {
  return renderTable(
    ['check', 'result', 'measured'],
    checks.map((c) => [c.name, c.ok ? 'pass' : 'FAIL', c.detail]),
  );
}

export const nodeList = (nodes: readonly string[]): string =>
  nodes.length === 0 ? '(none)' : nodes.join(', ');

export const allNodes = (): string[] => Array.from({ length: NODE_COUNT }, (_, i) => nodeName(i));
