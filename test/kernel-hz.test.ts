// The tick rate the datapath ages its flow cache and next hops with.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

import { describe, expect, it } from 'vitest';

import { FALLBACK_HZ, kernelHz, parseConfigHz } from '../control/system/kernel-hz.js';

describe('kernel tick rate (CONFIG_HZ)', () => {
  it.each([
    ['CONFIG_HZ_250=y\nCONFIG_HZ=250\n', 250],
    ['# CONFIG_HZ_PERIODIC is not set\nCONFIG_HZ=1000', 1000],
    ['CONFIG_HZ_100=y\nCONFIG_HZ=100\nCONFIG_HZ_FIXED=0', 100],
    ['CONFIG_HZ_250=y\n', undefined],
    ['CONFIG_HZ=0\n', undefined],
    ['CONFIG_HZ=99999\n', undefined],
    ['# CONFIG_HZ=300 is not set\n', undefined],
  ])('reads %j as %s', (text, hz) => {
    expect(parseConfigHz(text)).toBe(hz);
  });

  it('finds this kernel’s rate in its configuration, or falls back to the lowest rate', () => {
    const found = kernelHz();
    let config: string | undefined;
    try {
      config = gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
    } catch {
      config = undefined;
    }
    const expected = config === undefined ? undefined : parseConfigHz(config);
    if (expected === undefined) {
      expect(found.hz).toBe(FALLBACK_HZ);
      expect(found.source).toMatch(/^fallback/);
    } else {
      expect(found).toEqual({ hz: expected, source: '/proc/config.gz' });
    }
  });
});
