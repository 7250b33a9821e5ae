// The configurations the interop tests give GoBGP and FRR for their one
// neighbour: xlb's session (AS 65002 at XLB's address), seen from the peer
// (AS 65001 at PEER's address) across a BgpLink. Options cover what the
// tests vary: who connects, the MD5 password, graceful restart, IPv6.
import { PEER, XLB } from './link.js';

export interface PeerConfigOptions {
  /** The peer only accepts (default true): our session connects. */
  passive?: boolean;
  /** TCP MD5 password (RFC 2385). */
  password?: string;
  /** The peer as graceful restart helper (true), or with it off (false); left out: the daemon's default. */
  gracefulRestart?: boolean;
  /** Also IPv6 unicast (MP-BGP). */
  ipv6?: boolean;
  /** Seconds between the peer's own connection attempts (default: the daemon's). */
  connectRetry?: number;
}

/** gobgpd's TOML. */
export function gobgpPeerConfig(o: PeerConfigOptions = {}): string {
  const families = ['ipv4-unicast', ...(o.ipv6 ? ['ipv6-unicast'] : [])];
  const lines = [
    '[global.config]',
    '  as = 65001',
    `  router-id = "${PEER.v4}"`,
    '[[neighbors]]',
    '  [neighbors.config]',
    `    neighbor-address = "${XLB.v4}"`,
    '    peer-as = 65002',
    ...(o.password === undefined ? [] : [`    auth-password = "${o.password}"`]),
    '  [neighbors.transport.config]',
    `    passive-mode = ${o.passive ?? true}`,
    ...(o.connectRetry === undefined
      ? []
      : ['  [neighbors.timers.config]', `    connect-retry = ${o.connectRetry}`]),
    ...(o.gracefulRestart
      ? ['  [neighbors.graceful-restart.config]', '    enabled = true', '    helper-only = true']
      : []),
    ...families.flatMap((name) => [
      '  [[neighbors.afi-safis]]',
      '    [neighbors.afi-safis.config]',
      `      afi-safi-name = "${name}"`,
      ...(o.gracefulRestart
        ? ['    [neighbors.afi-safis.mp-graceful-restart.config]', '      enabled = true']
        : []),
    ]),
  ];
  return `${lines.join('\n')}\n`;
}

/** bgpd's configuration (FRR). */
export function frrPeerConfig(o: PeerConfigOptions = {}): string {
  const n = ` neighbor ${XLB.v4}`;
  const lines = [
    'hostname xlbt-frr',
    'router bgp 65001',
    ` bgp router-id ${PEER.v4}`,
    ' no bgp ebgp-requires-policy',
    `${n} remote-as 65002`,
    ...(o.password === undefined ? [] : [`${n} password ${o.password}`]),
    ...(o.connectRetry === undefined ? [] : [`${n} timers connect ${o.connectRetry}`]),
    ...((o.passive ?? true) ? [`${n} passive`] : []),
    ...(o.gracefulRestart === undefined
      ? []
      : [`${n} ${o.gracefulRestart ? 'graceful-restart-helper' : 'graceful-restart-disable'}`]),
    ...(o.ipv6
      ? [' address-family ipv6 unicast', `  neighbor ${XLB.v4} activate`, ' exit-address-family']
      : []),
  ];
  return `${lines.join('\n')}\n`;
}
