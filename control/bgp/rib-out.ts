// The routes a session announces to its peer (RFC 4271's Adj-RIB-Out), pure:
// what we want announced, what the peer has from us in this session, and
// what changed since the last look, so that the session sends only
// differences and never withdraws what it never announced.
import { parsePrefix, type Family } from './codec/prefix.js';
import type { NormalizedRoute } from './routes.js';

export class AdjRibOut {
  private readonly wanted = new Map<string, NormalizedRoute>();
  private readonly advertised = new Set<string>();
  private readonly changed = new Set<string>();

  /** Adds or replaces a route; a route with the same attributes is no change. */
  set(r: NormalizedRoute): void {
    if (this.wanted.get(r.prefix)?.key !== r.key) this.changed.add(r.prefix);
    this.wanted.set(r.prefix, r);
  }

  delete(prefix: string): void {
    if (this.wanted.delete(prefix)) this.changed.add(prefix);
  }

  prefixes(): string[] {
    return [...this.wanted.keys()];
  }

  /** Every route wanted, or those of one family. */
  routes(family?: Family): NormalizedRoute[] {
    const all = [...this.wanted.values()];
    return family === undefined ? all : all.filter((r) => parsePrefix(r.prefix).family === family);
  }

  /** A new session: the peer has nothing from us, everything is to be sent. */
  reset(): void {
    this.advertised.clear();
    this.changed.clear();
  }

  /** The peer now has these prefixes from us. */
  markAdvertised(prefixes: Iterable<string>): void {
    for (const p of prefixes) this.advertised.add(p);
  }

  /**
   * What changed since the last call: routes to announce (new or with new
   * attributes) and prefixes to withdraw (announced before, wanted no more).
   */
  takeChanges(): { announce: NormalizedRoute[]; withdraw: string[] } {
    const announce: NormalizedRoute[] = [];
    const withdraw: string[] = [];
    for (const p of this.changed) {
      const r = this.wanted.get(p);
      if (r !== undefined) announce.push(r);
      else if (this.advertised.delete(p)) withdraw.push(p);
    }
    this.changed.clear();
    return { announce, withdraw };
  }
}

/** Routes with equal attributes together (each group can share UPDATEs), in first-seen order. */
export function groupByAttributes(routes: readonly NormalizedRoute[]): NormalizedRoute[][] {
  const groups = new Map<string, NormalizedRoute[]>();
  for (const r of routes) {
    const list = groups.get(r.key);
    if (list === undefined) groups.set(r.key, [r]);
    else list.push(r);
  }
  return [...groups.values()];
}
