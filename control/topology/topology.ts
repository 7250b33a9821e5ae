// Builds network namespaces joined by veth pairs and tears down everything it
// built, in reverse order, even when building failed half-way. Tests and the
// demo share it, so the topology a test checks is the one a user sees.
import { randomBytes } from 'node:crypto';

import { ip, netnsExists, run } from './ip.js';

export interface VethEnd {
  ns: string;
  ifname: string;
  /** Addresses with prefix length, e.g. '192.0.2.1/24' or '2001:db8::1/64'. */
  addresses?: string[];
  mac?: string;
}

export class Topology {
  /** Short random tag so parallel runs never collide (interface names are 15 chars max). */
  readonly tag: string;
  private readonly undo: Array<{ what: string; fn: () => void }> = [];
  private destroyed = false;

  constructor(readonly prefix = 'xlb') {
    this.tag = randomBytes(3).toString('hex');
  }

  /** A namespace name unique to this topology. */
  nsName(role: string): string {
    return `${this.prefix}-${this.tag}-${role}`;
  }

  addNamespace(role: string): string {
    const name = this.nsName(role);
    ip('netns', 'add', name);
    this.undo.push({ what: `netns ${name}`, fn: () => ip('netns', 'del', name) });
    ip('-n', name, 'link', 'set', 'lo', 'up');
    return name;
  }

  /**
   * A veth pair between two namespaces, up, with addresses. IPv6 duplicate
   * address detection is switched off so addresses work at once.
   */
  addVeth(a: VethEnd, b: VethEnd): void {
    ip(
      'link',
      'add',
      a.ifname,
      'netns',
      a.ns,
      'type',
      'veth',
      'peer',
      'name',
      b.ifname,
      'netns',
      b.ns,
    );
    // Deleting the namespace deletes the pair too; this covers the case
    // where the namespaces outlive the topology.
    this.undo.push({
      what: `veth ${a.ns}/${a.ifname}`,
      fn: () => {
        if (netnsExists(a.ns)) ip('-n', a.ns, 'link', 'del', a.ifname);
      },
    });
    for (const end of [a, b]) this.configure(end);
  }

  private configure(end: VethEnd): void {
    run('ip', [
      'netns',
      'exec',
      end.ns,
      'sysctl',
      '-qw',
      `net.ipv6.conf.${end.ifname}.accept_dad=0`,
    ]);
    if (end.mac) ip('-n', end.ns, 'link', 'set', end.ifname, 'address', end.mac);
    for (const addr of end.addresses ?? []) {
      ip(
        '-n',
        end.ns,
        'addr',
        'add',
        addr,
        'dev',
        end.ifname,
        ...(addr.includes(':') ? ['nodad'] : []),
      );
    }
    ip('-n', end.ns, 'link', 'set', end.ifname, 'up');
  }

  /** Registers extra cleanup (a process, a pinned object) to run at destroy(). */
  onDestroy(what: string, fn: () => void): void {
    this.undo.push({ what, fn });
  }

  /**
   * Undoes everything, newest first. Every step runs even when an earlier one
   * fails; the failures are reported together at the end.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const failures: string[] = [];
    for (const step of this.undo.reverse()) {
      try {
        step.fn();
      } catch (e) {
        failures.push(`${step.what}: ${(e as Error).message}`);
      }
    }
    if (failures.length > 0)
      throw new Error(`cleanup left something behind:\n${failures.join('\n')}`);
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}
