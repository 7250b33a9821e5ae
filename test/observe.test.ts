import { Writable } from 'node:stream';

import { afterEach, describe, expect, it } from 'vitest';

import { configureLogging, logger } from '../control/observe/log.js';
import { counter, gauge, histogram, registry } from '../control/observe/metrics.js';

describe('observe: one logger, one registry', () => {
  afterEach(() => configureLogging({ destination: undefined, level: 'info' }));

  it('writes one JSON line per call with the component, level and ISO time', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    configureLogging({ destination: sink, level: 'debug' });
    logger('datapath').info({ service: 'default/web' }, 'table installed');
    logger('bgp').debug('keepalive');
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({
      level: 'info',
      component: 'datapath',
      service: 'default/web',
      msg: 'table installed',
      name: 'xlb',
    });
    expect(first.time).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: 'debug', component: 'bgp' });
  });

  it('registers metrics once in the shared registry and exposes them', async () => {
    const c = counter({ name: 'xlb_test_events_total', help: 'test events', labelNames: ['kind'] });
    expect(
      counter({ name: 'xlb_test_events_total', help: 'test events', labelNames: ['kind'] }),
    ).toBe(c);
    c.inc({ kind: 'a' }, 3);
    gauge({ name: 'xlb_test_level', help: 'a level' }).set(7);
    histogram({ name: 'xlb_test_duration_seconds', help: 'durations' }).observe(0.2);
    const text = await registry.metrics();
    expect(text).toContain('xlb_test_events_total{kind="a"} 3');
    expect(text).toContain('xlb_test_level 7');
    expect(text).toContain('xlb_test_duration_seconds_count 1');
  });

  it('refuses names outside the xlb_ namespace or without their unit suffix', () => {
    expect(() => counter({ name: 'events_total', help: 'x' })).toThrow(/must match xlb_/);
    expect(() => counter({ name: 'xlb_events', help: 'x' })).toThrow(/must end with _total/);
    expect(() => gauge({ name: 'xlb_things_total', help: 'x' })).toThrow(/not a counter/);
    expect(() => histogram({ name: 'xlb_latency', help: 'x' })).toThrow(/_seconds or _bytes/);
  });
});
