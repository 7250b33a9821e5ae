// The datapath's load-time settings from the agent's settings, this node's
// Node object and the uplink. Pure.
//
// The node addresses come from the Node object first because the other
// nodes tunnel to the address the model reads from it (indexNodes): the
// address this node decapsulates for must be that same one.
import type { V1Node } from '@kubernetes/client-node';

import { indexNodes } from '../model/index.js';

import type { AgentSettings } from './config.js';
import type { AgentDatapathSettings, UplinkFacts } from './ports.js';

export type SettingOrigin = 'settings' | 'Node' | 'uplink' | 'none';

export interface ResolvedDatapathSettings {
  settings: AgentDatapathSettings;
  /** Where each value came from, for the start-up log line. */
  origins: { mtu: SettingOrigin; nodeIPv4: SettingOrigin; nodeIPv6: SettingOrigin };
}

/** The datapath's "no address" for a family: nothing is decapsulated for it. */
export const NO_IPV4 = '0.0.0.0';
export const NO_IPV6 = '::';

const MAX_MTU = 65535;

export function resolveDatapathSettings(
  settings: Pick<AgentSettings, 'nodeName' | 'hashSeed' | 'mtu' | 'nodeIPv4' | 'nodeIPv6'>,
  node: V1Node | undefined,
  uplink: UplinkFacts,
): ResolvedDatapathSettings {
  const facts = node === undefined ? undefined : indexNodes([node]).get(settings.nodeName);
  const pick = (
    configured: string | undefined,
    fromNode: string | undefined,
    fromUplink: string | undefined,
    none: string,
  ): [string, SettingOrigin] => {
    if (configured !== undefined) return [configured, 'settings'];
    if (fromNode !== undefined) return [fromNode, 'Node'];
    if (fromUplink !== undefined) return [fromUplink, 'uplink'];
    return [none, 'none'];
  };
  const [nodeIPv4, v4] = pick(settings.nodeIPv4, facts?.addresses[4], uplink.ipv4[0], NO_IPV4);
  const [nodeIPv6, v6] = pick(settings.nodeIPv6, facts?.addresses[6], uplink.ipv6[0], NO_IPV6);
  return {
    settings: {
      hashSeed: settings.hashSeed,
      // Loopback-like devices report 65536; the datapath keeps 16 bits.
      mtu: settings.mtu ?? Math.min(uplink.mtu, MAX_MTU),
      nodeIPv4,
      nodeIPv6,
    },
    origins: {
      mtu: settings.mtu === undefined ? 'uplink' : 'settings',
      nodeIPv4: v4,
      nodeIPv6: v6,
    },
  };
}
