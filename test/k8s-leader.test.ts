// Lease leader election against the API server double, with short timings
// (lease 1 s, renew deadline 600 ms, retry 100 ms): one leader among three,
// a graceful hand-over within a retry period, a silent leader replaced only
// after the lease duration by the candidates' own clocks, a leader cut off
// from the API server stepping down in time, leaseTransitions, and Leases
// with missing or nonsensical fields.
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
  LeaderElectionError,
  LeaderElector,
  type LeaderElectionOptions,
} from '../control/k8s/leader.js';
import { microTime, readLeaseRecord, recordFingerprint } from '../control/k8s/lease-record.js';
import { ApiServer } from '../control/apiserver-double/index.js';

const NS = 'xlb-system';
const NAME = 'xlb-leader';
const LEASE_MS = 1000;
const DEADLINE_MS = 600;
const RETRY_MS = 100;

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Candidate {
  id: string;
  elector: LeaderElector;
  events: string[];
  startedAt: number[];
  stoppedAt: number[];
  leaders: string[];
}

describe('LeaderElector', () => {
  let server: ApiServer;
  let candidates: Candidate[];

  function candidate(id: string, extra: Partial<LeaderElectionOptions> = {}): Candidate {
    const c: Candidate = {
      id,
      elector: undefined as unknown as LeaderElector,
      events: [],
      startedAt: [],
      stoppedAt: [],
      leaders: [],
    };
    c.elector = new LeaderElector({
      kubeConfig: server.kubeConfig(),
      namespace: NS,
      name: NAME,
      identity: id,
      leaseDurationMs: LEASE_MS,
      renewDeadlineMs: DEADLINE_MS,
      retryPeriodMs: RETRY_MS,
      requestTimeoutMs: 300,
      log: pino({ level: 'silent' }),
      onStartedLeading: () => {
        c.events.push('started');
        c.startedAt.push(Date.now());
      },
      onStoppedLeading: () => {
        c.events.push('stopped');
        c.stoppedAt.push(Date.now());
      },
      onNewLeader: (leader) => {
        c.leaders.push(leader);
      },
      ...extra,
    });
    candidates.push(c);
    return c;
  }

  const leaders = () => candidates.filter((c) => c.elector.isLeader());
  const lease = () => server.get('Lease', NAME, NS);
  /** The Lease's spec (empty when there is no Lease). */
  const spec = () => (lease()?.spec ?? {}) as Record<string, unknown>;

  beforeEach(async () => {
    server = await ApiServer.start({ kubernetesService: false });
    server.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    candidates = [];
  });

  afterEach(async () => {
    await Promise.all(candidates.map((c) => c.elector.stop()));
    await server.close();
  });

  it('elects exactly one of three, and all three agree who', async () => {
    const three = ['agent-a', 'agent-b', 'agent-c'].map((id) => candidate(id));
    for (const c of three) c.elector.start();
    await until('a leader', () => leaders().length === 1);
    // Watch for a while: never two at once, and the leader keeps renewing.
    const firstLeader = leaders()[0]!;
    const renewTimes = new Set<string>();
    const end = Date.now() + 1500;
    while (Date.now() < end) {
      expect(leaders().length).toBeLessThanOrEqual(1);
      renewTimes.add(String(spec().renewTime));
      await sleep(10);
    }
    expect(leaders()).toEqual([firstLeader]);
    expect(renewTimes.size).toBeGreaterThan(5);
    expect(spec()).toMatchObject({
      holderIdentity: firstLeader.id,
      leaseDurationSeconds: 1,
      leaseTransitions: 0,
    });
    expect(String(spec().renewTime)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    for (const c of three) {
      expect(c.leaders).toEqual([firstLeader.id]);
      expect(c.elector.leader()).toBe(firstLeader.id);
      expect(c.events).toEqual(c === firstLeader ? ['started'] : []);
    }
  });

  it('hands over within about one retry period when the leader releases the lease', async () => {
    const [a, b, c] = ['agent-a', 'agent-b', 'agent-c'].map((id) => candidate(id));
    a!.elector.start();
    await until('a to lead', () => a!.elector.isLeader());
    b!.elector.start();
    c!.elector.start();
    await until('b and c to see a', () => b!.leaders.length === 1 && c!.leaders.length === 1);

    const t0 = Date.now();
    await a!.elector.stop({ release: true });
    expect(a!.events).toEqual(['started', 'stopped']);
    expect(spec().holderIdentity).toBeUndefined();
    await until('a new leader', () => leaders().length === 1);
    const took = Date.now() - t0;
    // Candidates retry every 100-120 ms: one retry period and the request
    // (with room for a loaded machine), far from the 1 s expiry.
    expect(took).toBeLessThan(RETRY_MS * 1.2 + 250);
    const next = leaders()[0]!;
    expect(spec()).toMatchObject({ holderIdentity: next.id, leaseTransitions: 1 });
    await until('the other to see it', () => [b, c].every((x) => x!.leaders.at(-1) === next.id));
  });

  it('a leader that stops renewing without releasing is replaced only after the lease duration', async () => {
    const a = candidate('agent-a');
    a.elector.start();
    await until('a to lead', () => a.elector.isLeader());
    const b = candidate('agent-b');
    b.elector.start();
    await until('b to see a', () => b.leaders.includes('agent-a'));
    await sleep(200);

    // a vanishes without a word (its last renewal stays on the lease).
    await a.elector.stop();
    const lastRenew = Date.now();
    const renewTime = spec().renewTime;
    expect(spec().holderIdentity).toBe('agent-a');
    await until('b to take over', () => b.elector.isLeader(), 3000);
    const after = b.startedAt[0]! - lastRenew;
    // b saw the last change at most one retry (+ jitter) before a stopped.
    expect(after).toBeGreaterThanOrEqual(LEASE_MS - RETRY_MS * 1.2 - 20);
    expect(after).toBeLessThan(LEASE_MS + RETRY_MS * 1.2 + 400);
    expect(spec()).toMatchObject({ holderIdentity: 'agent-b', leaseTransitions: 1 });
    expect(spec().renewTime).not.toBe(renewTime);
    expect(spec().acquireTime).toBe(spec().renewTime);
  });

  it('steps down within the renew deadline when the API server is unreachable', async () => {
    const a = candidate('agent-a');
    a.elector.start();
    await until('a to lead', () => a.elector.isLeader());
    await sleep(250);
    const renewedBefore = String(spec().renewTime);

    await server.disconnect();
    const cut = Date.now();
    await until('a to step down', () => !a.elector.isLeader(), 2000);
    const took = a.stoppedAt[0]! - cut;
    // The last renewal started at most one retry period before the cut.
    expect(took).toBeLessThanOrEqual(DEADLINE_MS + 150);
    expect(took).toBeGreaterThanOrEqual(DEADLINE_MS - RETRY_MS - 50);
    // Before the lease could expire for anyone else.
    expect(took).toBeLessThan(LEASE_MS - RETRY_MS);
    expect(a.events).toEqual(['started', 'stopped']);

    // When the server returns, the lease is still a's: it takes it back.
    await server.reconnect();
    await until('a to lead again', () => a.elector.isLeader(), 3000);
    expect(a.events).toEqual(['started', 'stopped', 'started']);
    expect(spec().renewTime).not.toBe(renewedBefore);
    expect(spec().leaseTransitions).toBe(0);
  });

  it('steps down when another candidate holds the lease, and counts every takeover', async () => {
    const a = candidate('agent-a');
    a.elector.start();
    await until('a to lead', () => a.elector.isLeader());
    expect(spec().leaseTransitions).toBe(0);

    // Someone else writes the lease (a manual takeover): a must notice and step down.
    server.apply({
      ...lease()!,
      spec: { ...spec(), holderIdentity: 'intruder', renewTime: microTime(new Date()) },
    });
    await until('a to step down', () => !a.elector.isLeader(), 1000);
    expect(a.leaders).toEqual(['agent-a', 'intruder']);

    // intruder never renews: after the lease duration a takes it back (transition 1).
    await until('a to lead again', () => a.elector.isLeader(), 3000);
    expect(spec()).toMatchObject({ holderIdentity: 'agent-a', leaseTransitions: 1 });

    // Graceful hand-over to b (2), then b vanishes and c takes over after expiry (3).
    const b = candidate('agent-b');
    b.elector.start();
    await until('b to see a', () => b.leaders.at(-1) === 'agent-a');
    await a.elector.stop({ release: true });
    await until('b to lead', () => b.elector.isLeader());
    expect(spec().leaseTransitions).toBe(2);
    const c = candidate('agent-c');
    c.elector.start();
    await until('c to see b', () => c.leaders.at(-1) === 'agent-b');
    await b.elector.stop();
    await until('c to lead', () => c.elector.isLeader(), 3000);
    expect(spec()).toMatchObject({ holderIdentity: 'agent-c', leaseTransitions: 3 });
  });

  it('survives a 409 on renewal and keeps leading', async () => {
    const a = candidate('agent-a');
    a.elector.start();
    await until('a to lead', () => a.elector.isLeader());
    // A label change bumps the resourceVersion: a's next conditional write conflicts.
    const current = lease()!;
    server.apply({ ...current, metadata: { ...current.metadata, labels: { touched: 'yes' } } });
    server.clearRequests();
    await until('a conflict and a renewal after it', () => {
      const updates = server.requests({ verb: 'update', resource: 'leases' });
      return updates.some((r) => r.code === 409) && updates.at(-1)?.code === 200;
    });
    expect(a.elector.isLeader()).toBe(true);
    expect(a.events).toEqual(['started']);
    expect(lease()?.metadata.labels).toEqual({ touched: 'yes' });
  });

  it('judges expiry by its own clock, not the holder renewTime', async () => {
    // A holder whose clock runs a century ahead, and one far behind: neither
    // renewTime says anything about when the lease expires.
    for (const [holder, renewTime] of [
      ['future-clock', '2126-01-01T00:00:00.000000Z'],
      ['past-clock', '2001-01-01T00:00:00.000000Z'],
    ] as const) {
      server.apply({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: NAME, namespace: NS },
        spec: {
          holderIdentity: holder,
          leaseDurationSeconds: 1,
          renewTime,
          acquireTime: renewTime,
        },
      });
      const a = candidate(`agent-${holder}`);
      const t0 = Date.now();
      a.elector.start();
      await until('a takeover', () => a.elector.isLeader(), 3000);
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(LEASE_MS - 20);
      expect(took).toBeLessThan(LEASE_MS + RETRY_MS * 1.2 + 400);
      expect(a.leaders[0]).toBe(holder);
      await a.elector.stop({ release: true });
    }
  });

  it('copes with Leases whose fields are missing or nonsensical', async () => {
    // No spec at all: nobody holds it; taken at once.
    server.apply({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: NAME, namespace: NS, labels: { keep: 'me' } },
    });
    const a = candidate('agent-a');
    a.elector.start();
    await until('a to lead', () => a.elector.isLeader(), 1000);
    expect(spec()).toMatchObject({ holderIdentity: 'agent-a', leaseTransitions: 1 });
    expect(lease()?.metadata.labels).toEqual({ keep: 'me' });
    await a.elector.stop({ release: true });

    // A holder without duration, renewTime or transitions: our duration applies.
    server.apply({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: NAME, namespace: NS },
      spec: { holderIdentity: 'ghost' },
    });
    const b = candidate('agent-b');
    const t0 = Date.now();
    b.elector.start();
    await until('b to lead', () => b.elector.isLeader(), 3000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(LEASE_MS - 20);
    expect(spec()).toMatchObject({ holderIdentity: 'agent-b', leaseTransitions: 1 });
    expect(b.leaders).toEqual(['ghost', 'agent-b']);
  });

  it('reads any record without throwing', () => {
    const garbage: unknown[] = [
      undefined,
      null,
      42,
      'lease',
      [],
      { spec: null },
      { spec: [] },
      { spec: 'x' },
      {
        spec: {
          holderIdentity: 7,
          leaseDurationSeconds: -3,
          renewTime: {},
          acquireTime: 12,
          leaseTransitions: 'many',
        },
      },
      { spec: { holderIdentity: ['a'], leaseDurationSeconds: 1.5, leaseTransitions: -1 } },
      { spec: { holderIdentity: '', leaseDurationSeconds: Number.MAX_VALUE * 2 } },
    ];
    for (const g of garbage) {
      expect(readLeaseRecord(g)).toEqual({
        holderIdentity: '',
        leaseDurationSeconds: undefined,
        acquireTime: undefined,
        renewTime: undefined,
        leaseTransitions: 0,
      });
      expect(typeof recordFingerprint(g)).toBe('string');
    }
    expect(
      readLeaseRecord({
        spec: {
          holderIdentity: 'a',
          leaseDurationSeconds: 15,
          renewTime: 'r',
          acquireTime: 'q',
          leaseTransitions: 4,
        },
      }),
    ).toEqual({
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      renewTime: 'r',
      acquireTime: 'q',
      leaseTransitions: 4,
    });
    expect(recordFingerprint({ spec: { renewTime: 'x' } })).not.toBe(
      recordFingerprint({ spec: { renewTime: 'y' } }),
    );
    expect(microTime(new Date('2026-05-01T12:00:00.123Z'))).toBe('2026-05-01T12:00:00.123000Z');
  });

  it('refuses timings that could make two leaders', () => {
    const base = {
      kubeConfig: server.kubeConfig(),
      namespace: NS,
      name: NAME,
      identity: 'x',
    };
    expect(
      () => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }),
    ).toThrow(LeaderElectionError);
    expect(
      () => new LeaderElector({ ...base, renewDeadlineMs: 2000, retryPeriodMs: 2000 }),
    ).toThrow(/renewDeadline/);
    expect(() => new LeaderElector({ ...base, identity: '' })).toThrow(/identity/);
  });

  it('leaves no timer or request behind after stop', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const baseline = timers();
    const a = candidate('agent-a');
    const b = candidate('agent-b');
    a.elector.start();
    b.elector.start();
    await until('a leader', () => leaders().length === 1);
    expect(timers()).toBeGreaterThan(baseline);
    await Promise.all([a.elector.stop(), b.elector.stop()]);
    const before = server.requests().length;
    // Past the request timeout (300 ms), whose timers end on their own.
    await sleep(400);
    expect(server.requests().length).toBe(before);
    expect(timers()).toBeLessThanOrEqual(baseline);
    // Both got their final callbacks exactly once.
    const leader = [a, b].find((c) => c.events.includes('started'))!;
    expect(leader.events).toEqual(['started', 'stopped']);
    await leader.elector.stop(); // again: nothing more
    expect(leader.events).toEqual(['started', 'stopped']);
  });
});
