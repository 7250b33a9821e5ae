// The uplink's MTU and addresses, read with `ip -j` (in the uplink's network
// namespace when there is one): the defaults for the datapath's MTU and node
// addresses when neither the settings nor the Node object give them.
import { existsSync } from 'node:fs';

import { CommandError, run } from '../topology/ip.js';

import type { UplinkFacts, UplinkReader } from './ports.js';

export class UplinkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UplinkError';
  }
}

interface IpAddrJson {
  ifname?: string;
  mtu?: number;
  addr_info?: { family?: string; local?: string; scope?: string }[];
}

/** Pure: `ip -j addr show dev X` output -> facts. Only global addresses count: link-local ones cannot be tunnelled to. */
export function parseIpAddrJson(json: string, uplink: string): UplinkFacts {
  let links: IpAddrJson[];
  try {
    links = JSON.parse(json) as IpAddrJson[];
  } catch (e) {
    throw new UplinkError(`cannot read the output of ip -j addr: ${(e as Error).message}`);
  }
  const link = Array.isArray(links) ? links.find((l) => l.ifname === uplink) : undefined;
  if (link === undefined || typeof link.mtu !== 'number')
    throw new UplinkError(`ip -j addr did not describe ${uplink}`);
  const global = (family: string): string[] =>
    (link.addr_info ?? [])
      .filter((a) => a.family === family && a.scope === 'global' && typeof a.local === 'string')
      .map((a) => a.local!);
  return { mtu: link.mtu, ipv4: global('inet'), ipv6: global('inet6') };
}

export const readUplink: UplinkReader = (netns, uplink) => {
  const where = netns === undefined ? '' : ` in network namespace ${netns}`;
  if (netns !== undefined && !existsSync(`/run/netns/${netns}`))
    throw new UplinkError(
      `network namespace ${netns} does not exist (no /run/netns/${netns}): check --netns against \`ip netns list\``,
    );
  let out: string;
  try {
    out = run('ip', [
      ...(netns === undefined ? [] : ['-n', netns]),
      '-j',
      'addr',
      'show',
      'dev',
      uplink,
    ]);
  } catch (e) {
    const detail = e instanceof CommandError ? e.stderr.trim() : (e as Error).message;
    throw new UplinkError(
      `cannot read the uplink ${uplink}${where}: ${detail}; check --uplink against \`ip link\``,
    );
  }
  return parseIpAddrJson(out, uplink);
};
