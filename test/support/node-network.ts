// A network namespace that plays the node for the datapath's FIB lookups, so
// encapsulation fixtures get deterministic MACs, interfaces and verdicts:
//
//   node ns                                  gw ns
//   eth0 02:00:00:00:e0:01 ---- veth ---- gw0 02:00:00:00:e0:02
//     192.0.2.241/29, 2001:db8:e0::1/64         192.0.2.242, 2001:db8:e0::2
//   eth1 02:00:00:00:e1:01 ---- veth ---- gw1 02:00:00:00:e1:02
//     192.0.2.249/29, 2001:db8:e1::1/64         192.0.2.250, 2001:db8:e1::2
//
// Routes in the node namespace (forwarding on, no default route):
//   PEER.tx       via the gateway on eth0 (permanent neighbour) -> XDP_TX when in on eth0
//   PEER.redirect via the gateway on eth1 (permanent neighbour) -> XDP_REDIRECT
//   PEER.noNeigh  via 192.0.2.243 / 2001:db8:e0::3 on eth0, which has no neighbour entry
//   PEER.noRoute  nowhere
//   PEER.smallMtu via the gateway on eth0, with a route MTU of 1300
import { ip, run } from '../../control/topology/ip.js';
import { Topology } from '../../control/topology/topology.js';
import { ifIndex, inNetns } from '../../native/index.js';
import { PEER4, PEER6 } from './datapath-fixture.js';

export const LINKS = {
  eth0: {
    mac: '02:00:00:00:e0:01',
    gwMac: '02:00:00:00:e0:02',
    addr4: '192.0.2.241',
    gw4: '192.0.2.242',
    silent4: '192.0.2.243',
    addr6: '2001:db8:e0::1',
    gw6: '2001:db8:e0::2',
    silent6: '2001:db8:e0::3',
  },
  eth1: {
    mac: '02:00:00:00:e1:01',
    gwMac: '02:00:00:00:e1:02',
    addr4: '192.0.2.249',
    gw4: '192.0.2.250',
    addr6: '2001:db8:e1::1',
    gw6: '2001:db8:e1::2',
  },
} as const;

export class NodeNetwork {
  readonly node: string;
  readonly gw: string;
  readonly eth0: number;
  readonly eth1: number;

  private constructor(private readonly topo: Topology) {
    try {
      this.node = topo.addNamespace('node');
      this.gw = topo.addNamespace('gw');
      const { eth0, eth1 } = LINKS;
      topo.addVeth(
        {
          ns: this.node,
          ifname: 'eth0',
          mac: eth0.mac,
          addresses: [`${eth0.addr4}/29`, `${eth0.addr6}/64`],
        },
        {
          ns: this.gw,
          ifname: 'gw0',
          mac: eth0.gwMac,
          addresses: [`${eth0.gw4}/29`, `${eth0.gw6}/64`],
        },
      );
      topo.addVeth(
        {
          ns: this.node,
          ifname: 'eth1',
          mac: eth1.mac,
          addresses: [`${eth1.addr4}/29`, `${eth1.addr6}/64`],
        },
        {
          ns: this.gw,
          ifname: 'gw1',
          mac: eth1.gwMac,
          addresses: [`${eth1.gw4}/29`, `${eth1.gw6}/64`],
        },
      );
      // bpf_fib_lookup refuses to forward from an interface without forwarding.
      run('ip', [
        'netns',
        'exec',
        this.node,
        'sysctl',
        '-qw',
        'net.ipv4.conf.all.forwarding=1',
        'net.ipv6.conf.all.forwarding=1',
      ]);
      const n = ['-n', this.node];
      ip(
        ...n,
        'neigh',
        'replace',
        eth0.gw4,
        'lladdr',
        eth0.gwMac,
        'dev',
        'eth0',
        'nud',
        'permanent',
      );
      ip(
        ...n,
        'neigh',
        'replace',
        eth1.gw4,
        'lladdr',
        eth1.gwMac,
        'dev',
        'eth1',
        'nud',
        'permanent',
      );
      ip(
        ...n,
        'neigh',
        'replace',
        eth0.gw6,
        'lladdr',
        eth0.gwMac,
        'dev',
        'eth0',
        'nud',
        'permanent',
      );
      ip(
        ...n,
        'neigh',
        'replace',
        eth1.gw6,
        'lladdr',
        eth1.gwMac,
        'dev',
        'eth1',
        'nud',
        'permanent',
      );
      const route = (dst: string, via: string, dev: string, ...extra: string[]) =>
        ip(
          ...n,
          dst.includes(':') ? '-6' : '-4',
          'route',
          'add',
          dst,
          'via',
          via,
          'dev',
          dev,
          ...extra,
        );
      // Only a locked route MTU counts for IPv6 FIB lookups; lock both alike.
      const smallMtu = ['mtu', 'lock', '1300'];
      route(`${PEER4.tx}/32`, eth0.gw4, 'eth0');
      route(`${PEER4.redirect}/32`, eth1.gw4, 'eth1');
      route(`${PEER4.noNeigh}/32`, eth0.silent4, 'eth0');
      route(`${PEER4.smallMtu}/32`, eth0.gw4, 'eth0', ...smallMtu);
      route(`${PEER6.tx}/128`, eth0.gw6, 'eth0');
      route(`${PEER6.redirect}/128`, eth1.gw6, 'eth1');
      route(`${PEER6.noNeigh}/128`, eth0.silent6, 'eth0');
      route(`${PEER6.smallMtu}/128`, eth0.gw6, 'eth0', ...smallMtu);
      this.eth0 = inNetns(this.node, () => ifIndex('eth0'));
      this.eth1 = inNetns(this.node, () => ifIndex('eth1'));
    } catch (e) {
      topo.destroy();
      throw e;
    }
  }

  static create(): NodeNetwork {
    return new NodeNetwork(new Topology('xlbfx'));
  }

  /** The kernel's neighbour entries of the node namespace (for failure messages). */
  neighbours(): string {
    return ip('-n', this.node, 'neigh', 'show');
  }

  destroy(): void {
    this.topo.destroy();
  }
}
