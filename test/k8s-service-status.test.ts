// The pure part of the Service controller: what a Service's status,
// condition and finalizer should be for an allocation, and what is released
// when it is deleted or no longer xlb's.
import type { V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';

import type { ServiceAllocation } from '../control/ipam/index.js';
import {
  ADDRESS_CONDITION,
  addressesToRelease,
  assignmentCondition,
  cleanupCause,
  LB_FINALIZER,
  ownedStatus,
  poolMembership,
  releasedStatus,
} from '../control/k8s/service-status.js';
import { resolveOptions } from '../control/model/options.js';

const T0 = new Date('2025-01-01T10:00:00.123Z');
const T1 = new Date('2025-01-01T11:00:00Z');
const options = resolveOptions();

function service(o: {
  ingress?: object[];
  conditions?: object[];
  finalizers?: string[];
  deleting?: boolean;
  type?: string;
  cls?: string;
}): V1Service {
  return {
    metadata: {
      name: 'web',
      namespace: 'default',
      resourceVersion: '7',
      ...(o.finalizers !== undefined ? { finalizers: o.finalizers } : {}),
      ...(o.deleting === true ? { deletionTimestamp: T0 } : {}),
    },
    spec: { type: o.type ?? 'LoadBalancer', loadBalancerClass: o.cls ?? 'xlb.dev/xlb' },
    status: {
      loadBalancer: { ingress: o.ingress ?? [] },
      ...(o.conditions !== undefined ? { conditions: o.conditions as never } : {}),
    },
  };
}

const allocated: ServiceAllocation = {
  service: 'default/web',
  addresses: [{ address: '192.0.2.10', family: 4, pool: 'p' }],
  pending: false,
  reason: 'allocated',
  message: "192.0.2.10 from IPPool 'p'",
  changed: true,
};

const exhausted: ServiceAllocation = {
  service: 'default/web',
  addresses: [],
  pending: true,
  reason: 'poolExhausted',
  message: "IPPool 'p' has no free IPv4 address",
  changed: false,
};

describe('Service status for an allocation', () => {
  it('writes ingress with ipMode VIP and a True condition stamped now, in whole seconds', () => {
    const w = ownedStatus(service({}), allocated, T0);
    expect(w).toEqual({
      ingress: [{ ip: '192.0.2.10', ipMode: 'VIP' }],
      conditions: [
        {
          type: ADDRESS_CONDITION,
          status: 'True',
          reason: 'Assigned',
          message: "192.0.2.10 from IPPool 'p'",
          lastTransitionTime: '2025-01-01T10:00:00Z',
        },
      ],
    });
  });

  it('writes nothing when the Service already says it (restored reads the same as allocated)', () => {
    const done = service({
      ingress: [{ ip: '192.0.2.10', ipMode: 'VIP' }],
      conditions: ownedStatus(service({}), allocated, T0)!.conditions,
    });
    expect(ownedStatus(done, { ...allocated, reason: 'restored' }, T1)).toBeUndefined();
    // An entry written without ipMode is rewritten.
    const noMode = service({
      ingress: [{ ip: '192.0.2.10' }],
      conditions: ownedStatus(service({}), allocated, T0)!.conditions,
    });
    expect(ownedStatus(noMode, allocated, T1)?.ingress).toEqual([
      { ip: '192.0.2.10', ipMode: 'VIP' },
    ]);
  });

  it('keeps other conditions, and moves lastTransitionTime only when the status flips', () => {
    const other = {
      type: 'example.com/Other',
      status: 'True',
      reason: 'Fine',
      message: '',
      lastTransitionTime: T0,
    };
    const pending = service({ conditions: [other] });
    const first = ownedStatus(pending, exhausted, T0)!;
    expect(first.ingress).toEqual([]);
    expect(first.conditions.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['example.com/Other', 'True', 'Fine'],
      [ADDRESS_CONDITION, 'False', 'PoolExhausted'],
    ]);
    expect(first.conditions[0]!.lastTransitionTime).toBe('2025-01-01T10:00:00Z');

    // Still pending, for another reason: same status, same transition time.
    const stillPending = service({ conditions: first.conditions });
    const second = ownedStatus(stillPending, { ...exhausted, reason: 'noPoolForService' }, T1)!;
    expect(second.conditions[1]).toMatchObject({
      reason: 'NoPoolForService',
      lastTransitionTime: '2025-01-01T10:00:00Z',
    });
    // Served at last: the status flips, and the time with it.
    const third = ownedStatus(service({ conditions: second.conditions }), allocated, T1)!;
    expect(third.conditions[1]).toMatchObject({
      status: 'True',
      lastTransitionTime: '2025-01-01T11:00:00Z',
    });
  });

  it('says when a Service keeps its address despite a problem', () => {
    expect(
      assignmentCondition({ ...allocated, reason: 'invalidRequest', message: 'bad annotation' }),
    ).toMatchObject({ status: 'True', reason: 'InvalidRequest', message: 'bad annotation' });
  });
});

describe('Releasing', () => {
  const inPools = poolMembership([
    { spec: { addresses: ['192.0.2.0/24', '2001:db8::1-2001:db8::ff', 'garbage'] } },
  ]);

  it('knows which addresses are in our pools', () => {
    expect(['192.0.2.10', '2001:db8::10', '198.51.100.1', 'nope'].map(inPools)).toEqual([
      true,
      true,
      false,
      false,
    ]);
  });

  it('says why a Service with our finalizer must be cleaned up', () => {
    const f = [LB_FINALIZER];
    expect(cleanupCause(service({}), options)).toBe('none');
    expect(cleanupCause(service({ finalizers: f }), options)).toBe('none');
    expect(cleanupCause(service({ finalizers: f, deleting: true }), options)).toBe('deleting');
    expect(cleanupCause(service({ finalizers: f, type: 'ClusterIP' }), options)).toBe('notOurs');
    expect(cleanupCause(service({ finalizers: f, cls: 'other.example/lb' }), options)).toBe(
      'notOurs',
    );
    // Another controller's finalizer alone is not ours to act on.
    expect(cleanupCause(service({ finalizers: ['example.com/x'], deleting: true }), options)).toBe(
      'none',
    );
  });

  it("releases all of our own Service's addresses, and of a former one only ours", () => {
    const ingress = [{ ip: '192.0.2.10' }, { ip: '203.0.113.5' }];
    const assigned = { type: ADDRESS_CONDITION, status: 'True', reason: 'Assigned', message: '' };
    expect(addressesToRelease(service({ ingress }), true, inPools)).toEqual([
      '192.0.2.10',
      '203.0.113.5',
    ]);
    expect(
      addressesToRelease(service({ ingress, conditions: [assigned] }), false, inPools),
    ).toEqual(['192.0.2.10']);
    // Without our True condition nothing says xlb wrote any of them.
    expect(addressesToRelease(service({ ingress }), false, inPools)).toEqual([]);
  });

  it('clears the released addresses; a deleted Service says it is releasing, a former one loses our condition', () => {
    const cond = ownedStatus(service({}), allocated, T0)!.conditions;
    const held = service({
      ingress: [{ ip: '192.0.2.10', ipMode: 'VIP' }, { ip: '203.0.113.5' }],
      conditions: cond,
    });
    const deleting = releasedStatus(held, ['192.0.2.10'], true, T1)!;
    expect(deleting.ingress).toEqual([{ ip: '203.0.113.5' }]);
    expect(deleting.conditions).toEqual([
      expect.objectContaining({
        status: 'False',
        reason: 'Releasing',
        lastTransitionTime: '2025-01-01T11:00:00Z',
      }),
    ]);
    // Written once: a retry that knows fewer addresses changes nothing.
    const after = service({ ingress: deleting.ingress, conditions: deleting.conditions });
    expect(releasedStatus(after, [], true, T1)).toBeUndefined();

    const former = releasedStatus(held, ['192.0.2.10'], false, T1)!;
    expect(former).toEqual({ ingress: [{ ip: '203.0.113.5' }], conditions: [] });
    expect(releasedStatus(service({}), [], false, T1)).toBeUndefined();
  });
});
