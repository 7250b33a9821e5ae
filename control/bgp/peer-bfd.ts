// The speaker's BFD bookkeeping: one BfdSession per BGPPeer with bfd.enabled,
// run from the session's local address (spec.sourceAddress, else the node's
// address of the peer's family), on one BfdEndpoint per local address shared
// by the peers using it. A BFD session going down resets its peer's BGP
// session at once (RFC 5882 section 4.3).
//
// A BFD session outlives the BGP session it guards when a reconfiguration
// touches neither the BFD settings nor the addresses: rebind() ties it to
// the rebuilt BGP session. Closing it would send AdminDown, which some
// routers (BIRD 2.0.12) take for a failure and answer by waiting out their
// error wait (60 s) before they accept the BGP session again.
import net from 'node:net';

import type { Logger } from '../observe/log.js';

import type { PeerPlan } from './config.js';
import {
  BfdEndpoint,
  Diag,
  type BfdSession,
  type EndpointStats,
  type SocketScope,
} from './bfd/index.js';
import type { BgpSession } from './session.js';

export interface PeerBfdOptions {
  /** Runs the creation of BFD sockets (the agent enters the uplink's namespace). */
  scope?: SocketScope;
  log: Logger;
}

interface Entry {
  bfd: BfdSession;
  local: string;
  /** The settings and addresses the BFD session was started with. */
  key: string;
  /** The BGP session it resets; replaced by rebind(). */
  session: BgpSession;
}

/** An endpoint per local address, shared by the peers using it. */
interface SharedEndpoint {
  endpoint: BfdEndpoint;
  users: number;
}

/** The address a peer's BFD runs from: the session's local address, else the node's of its family. */
function localAddressOf(plan: PeerPlan): string | undefined {
  const { peerAddress, localAddress, nextHops } = plan.options;
  return localAddress ?? (net.isIPv6(peerAddress) ? nextHops?.ipv6 : nextHops?.ipv4);
}

/** What a running BFD session depends on; undefined when the plan does not enable BFD. */
function bfdKey(plan: PeerPlan): string | undefined {
  if (plan.bfd?.enabled !== true) return undefined;
  return JSON.stringify({
    bfd: plan.bfd,
    peer: plan.options.peerAddress,
    local: localAddressOf(plan),
  });
}

export class PeerBfd {
  private readonly entries = new Map<string, Entry>();
  private readonly endpoints = new Map<string, SharedEndpoint>();

  constructor(private readonly options: PeerBfdOptions) {}

  /** The BFD sessions running, by BGPPeer name. */
  sessions(): ReadonlyMap<string, BfdSession> {
    return new Map([...this.entries].map(([name, e]) => [name, e.bfd]));
  }

  /** Whether the BFD session running for `from` can carry on under `to` unchanged. */
  keeps(from: PeerPlan, to: PeerPlan): boolean {
    const key = bfdKey(to);
    return key !== undefined && this.entries.get(from.name)?.key === key;
  }

  /** Ties the peer's running BFD session to its rebuilt BGP session. */
  rebind(name: string, session: BgpSession): void {
    const e = this.entries.get(name);
    if (e === undefined) return;
    e.session = session;
    this.options.log.info(
      { peer: name },
      'BGP session rebuilt; its BFD session carries on (BFD settings and addresses unchanged)',
    );
  }

  /**
   * Starts the peer's BFD session if its plan enables BFD and none runs; the
   * problem, if it cannot start (retried on the next call).
   */
  ensure(plan: PeerPlan, session: BgpSession): string | undefined {
    const key = bfdKey(plan);
    if (key === undefined || this.entries.has(plan.name)) return undefined;
    const bfd = plan.bfd!;
    const { peerAddress } = plan.options;
    const local = localAddressOf(plan);
    if (local === undefined) {
      return (
        `BGPPeer '${plan.name}': BFD not started: this node has no ` +
        `${net.isIPv6(peerAddress) ? 'IPv6' : 'IPv4'} address to run it from`
      );
    }
    let shared = this.endpoints.get(local);
    let started: BfdSession;
    try {
      if (shared === undefined) {
        shared = {
          endpoint: new BfdEndpoint({
            localAddress: local,
            ...(this.options.scope === undefined ? {} : { scope: this.options.scope }),
            log: this.options.log,
          }),
          users: 0,
        };
        this.endpoints.set(local, shared);
      }
      started = shared.endpoint.session({
        peerAddress,
        timing: {
          desiredMinTxUs: bfd.minTxMs * 1000,
          requiredMinRxUs: bfd.minRxMs * 1000,
          detectMult: bfd.detectMultiplier,
        },
      });
    } catch (e) {
      if (shared !== undefined && shared.users === 0) this.releaseEndpoint(local);
      return `BGPPeer '${plan.name}': BFD not started from ${local}: ${(e as Error).message}`;
    }
    shared.users++;
    const entry: Entry = { bfd: started, local, key, session };
    this.entries.set(plan.name, entry);
    const log = this.options.log;
    started.on('up', () => log.info({ peer: plan.name, peerAddress }, 'BFD session up'));
    started.on('down', (diag) => {
      const why = `BFD: peer ${peerAddress} unreachable (${Diag[diag] ?? `diagnostic ${diag}`})`;
      log.warn({ peer: plan.name, diag: Diag[diag] }, 'BFD session down; resetting BGP');
      entry.session.bfdDown(why);
    });
    started.on('peerAdminDown', () =>
      log.info(
        { peer: plan.name, peerAddress },
        'BFD taken down by the peer administratively; the BGP session is left alone',
      ),
    );
    return undefined;
  }

  /**
   * Lets go of the peer's BFD session now (a new one may start for the
   * peer at once) and returns what closes it, with AdminDown so that the
   * peer does not take our leaving for a path failure (RFC 5882 section
   * 3.2): the caller runs it once its Cease has gone out.
   */
  detach(name: string): (() => void) | undefined {
    const e = this.entries.get(name);
    if (e === undefined) return undefined;
    this.entries.delete(name);
    return () => {
      e.bfd.close({ notifyPeer: true });
      this.releaseEndpoint(e.local);
    };
  }

  /** What each endpoint (by local address) received and discarded, with the reasons. */
  endpointStats(): ReadonlyMap<string, EndpointStats> {
    return new Map([...this.endpoints].map(([local, { endpoint }]) => [local, endpoint.stats]));
  }

  /** Closes the peer's BFD session at once (AdminDown). */
  stop(name: string): void {
    this.detach(name)?.();
  }

  private releaseEndpoint(local: string): void {
    const shared = this.endpoints.get(local);
    if (shared === undefined) return;
    shared.users--;
    if (shared.users > 0) return;
    this.endpoints.delete(local);
    shared.endpoint.close();
  }
}
