// The flow `xlb explain` is asked about, from the command line's words:
// CLIENT:PORT and VIP:PORT/PROTO, IPv6 addresses in brackets.
import ipaddr from 'ipaddr.js';

import type { L4Proto } from '../datapath/maps.js';

export interface ExplainFlow {
  client: string;
  clientPort: number;
  vip: string;
  port: number;
  proto: L4Proto;
}

/** Bad input: the command exits 2 with this message. */
export class FlowInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlowInputError';
  }
}

function parseEndpoint(text: string, what: string): { address: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (m === null) {
    throw new FlowInputError(
      `${what} '${text}' is not ADDRESS:PORT (write IPv6 addresses in brackets: [2001:db8::1]:80)`,
    );
  }
  const [, addr, portText] = m as unknown as [string, string, string];
  if (!ipaddr.isValid(addr)) throw new FlowInputError(`${what} '${addr}' is not an IP address`);
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new FlowInputError(`${what} port ${portText} is not a port (1-65535)`);
  }
  const parsed = ipaddr.parse(addr);
  // An IPv4-mapped IPv6 address is an IPv6 flow to the datapath: keep it as written.
  return { address: parsed.toString(), port };
}

/** Parses `CLIENT:PORT` and `VIP:PORT/PROTO` (protocol TCP or UDP, any case). */
export function parseFlow(source: string, destination: string): ExplainFlow {
  const client = parseEndpoint(source, 'client');
  const slash = destination.lastIndexOf('/');
  if (slash < 0) {
    throw new FlowInputError(
      `destination '${destination}' is not VIP:PORT/PROTO (e.g. 203.0.113.10:80/TCP)`,
    );
  }
  const protoText = destination.slice(slash + 1).toUpperCase();
  if (protoText !== 'TCP' && protoText !== 'UDP') {
    throw new FlowInputError(
      `protocol '${destination.slice(slash + 1)}' is not TCP or UDP (xlb balances only those)`,
    );
  }
  const vip = parseEndpoint(destination.slice(0, slash), 'VIP');
  const family = (a: string): string => ipaddr.parse(a).kind();
  if (family(client.address) !== family(vip.address)) {
    throw new FlowInputError(
      `client ${client.address} and VIP ${vip.address} are of different IP families`,
    );
  }
  return {
    client: client.address,
    clientPort: client.port,
    vip: vip.address,
    port: vip.port,
    proto: protoText,
  };
}
