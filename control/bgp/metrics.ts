// Per-peer BGP metrics: session state (as the BGP MIB numbers it), time
// Established, UPDATEs sent and received, and flaps (each time a session
// leaves Established). Sessions are replaced when a peer's settings change,
// so counters are fed by differences against the session last seen, and a
// peer keeps one time series across its sessions.
import { Counter, Gauge, type Registry } from 'prom-client';

import type { State } from './fsm.js';
import type { BgpSession } from './session.js';

/** RFC 4273 bgpPeerState. */
export const SESSION_STATE_CODE: Readonly<Record<State, number>> = {
  Idle: 1,
  Connect: 2,
  Active: 3,
  OpenSent: 4,
  OpenConfirm: 5,
  Established: 6,
};

interface Tracked {
  session: BgpSession;
  establishedAt: number | undefined;
  seenSent: number;
  seenReceived: number;
  onState: (to: State, from: State) => void;
}

function metric<M>(registry: Registry, name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}

export class BgpMetrics {
  private readonly tracked = new Map<string, Tracked>();
  private readonly state: Gauge<'peer'>;
  private readonly uptime: Gauge<'peer'>;
  private readonly updatesSent: Counter<'peer'>;
  private readonly updatesReceived: Counter<'peer'>;
  private readonly flaps: Counter<'peer'>;
  private readonly routes: Gauge<'peer'>;

  constructor(
    registry: Registry,
    private readonly now: () => number = Date.now,
  ) {
    const registers = [registry];
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.state = metric(
      registry,
      'xlb_bgp_session_state',
      () =>
        new Gauge({
          name: 'xlb_bgp_session_state',
          help: 'BGP session state per peer: 1 Idle, 2 Connect, 3 Active, 4 OpenSent, 5 OpenConfirm, 6 Established',
          labelNames: ['peer'],
          registers,
          collect() {
            self.refresh();
          },
        }),
    );
    this.uptime = metric(
      registry,
      'xlb_bgp_session_uptime_seconds',
      () =>
        new Gauge({
          name: 'xlb_bgp_session_uptime_seconds',
          help: 'Seconds the BGP session has been Established (0 when it is not)',
          labelNames: ['peer'],
          registers,
          collect() {
            self.refresh();
          },
        }),
    );
    this.updatesSent = metric(
      registry,
      'xlb_bgp_updates_sent_total',
      () =>
        new Counter({
          name: 'xlb_bgp_updates_sent_total',
          help: 'UPDATE messages sent to the peer',
          labelNames: ['peer'],
          registers,
          collect() {
            self.refresh();
          },
        }),
    );
    this.updatesReceived = metric(
      registry,
      'xlb_bgp_updates_received_total',
      () =>
        new Counter({
          name: 'xlb_bgp_updates_received_total',
          help: 'UPDATE messages received from the peer',
          labelNames: ['peer'],
          registers,
          collect() {
            self.refresh();
          },
        }),
    );
    this.flaps = metric(
      registry,
      'xlb_bgp_session_flaps_total',
      () =>
        new Counter({
          name: 'xlb_bgp_session_flaps_total',
          help: 'Times the BGP session left Established',
          labelNames: ['peer'],
          registers,
        }),
    );
    this.routes = metric(
      registry,
      'xlb_bgp_announced_routes',
      () =>
        new Gauge({
          name: 'xlb_bgp_announced_routes',
          help: 'Routes xlb wants the peer to hold',
          labelNames: ['peer'],
          registers,
          collect() {
            self.refresh();
          },
        }),
    );
  }

  /** Follows `session` as `peer` (replacing the peer's previous session, if any). */
  track(peer: string, session: BgpSession): void {
    this.flush(peer);
    const prev = this.tracked.get(peer);
    if (prev !== undefined) prev.session.off('state', prev.onState);
    const t: Tracked = {
      session,
      establishedAt: session.state === 'Established' ? this.now() : undefined,
      seenSent: session.stats.updatesSent,
      seenReceived: session.stats.updatesReceived,
      onState: (to, from) => {
        if (to === 'Established') t.establishedAt = this.now();
        if (from === 'Established' && to !== 'Established') {
          t.establishedAt = undefined;
          this.flaps.inc({ peer });
        }
      },
    };
    session.on('state', t.onState);
    this.tracked.set(peer, t);
    // Every series exists from the start, so a rate() sees the first flap.
    this.flaps.inc({ peer }, 0);
    this.updatesSent.inc({ peer }, 0);
    this.updatesReceived.inc({ peer }, 0);
    this.refresh();
  }

  /** Stops following the peer and removes its series. */
  untrack(peer: string): void {
    const t = this.tracked.get(peer);
    if (t === undefined) return;
    t.session.off('state', t.onState);
    this.tracked.delete(peer);
    for (const m of [
      this.state,
      this.uptime,
      this.updatesSent,
      this.updatesReceived,
      this.flaps,
      this.routes,
    ]) {
      m.remove({ peer });
    }
  }

  /** Counts what the peer's session sent and received since last looked at. */
  private flush(peer: string): void {
    const t = this.tracked.get(peer);
    if (t === undefined) return;
    const { updatesSent, updatesReceived } = t.session.stats;
    if (updatesSent > t.seenSent) this.updatesSent.inc({ peer }, updatesSent - t.seenSent);
    if (updatesReceived > t.seenReceived)
      this.updatesReceived.inc({ peer }, updatesReceived - t.seenReceived);
    t.seenSent = updatesSent;
    t.seenReceived = updatesReceived;
  }

  private refresh(): void {
    for (const [peer, t] of this.tracked) {
      this.flush(peer);
      this.state.set({ peer }, SESSION_STATE_CODE[t.session.state]);
      this.uptime.set(
        { peer },
        t.establishedAt === undefined ? 0 : Math.max(0, (this.now() - t.establishedAt) / 1000),
      );
      this.routes.set({ peer }, t.session.routes().length);
    }
  }
}
