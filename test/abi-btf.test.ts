import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { abiEnums, abiStructs, XlbConfig, XlbCounter, XlbDrop } from '../control/datapath/abi.js';
import { Btf, checkAbi, compareEnum, compareStruct } from '../control/datapath/btf.js';
import { cEnum, ipv4, ipv6, pad, struct, u16, u32, u8 } from '../control/datapath/codec.js';
import { projectRoot } from '../control/paths.js';

const buildDir = join(projectRoot(), 'bpf', 'build');
const entryObjects = (): string[] =>
  readdirSync(buildDir)
    .filter((f) => f.endsWith('.o'))
    .map((f) => join(buildDir, f));

describe('datapath ABI: TypeScript codecs against the compiled objects’ BTF', () => {
  beforeAll(() => {
    expect(entryObjects().length, 'no BPF objects built: run the set-up command').toBeGreaterThan(
      0,
    );
  });

  it('agrees on every struct size, field offset and enum value, in every entry object', () => {
    for (const obj of entryObjects()) expect(checkAbi(obj), obj).toEqual([]);
  });

  it('mirrors at least the structs and enums the datapath uses today', () => {
    expect(abiStructs.map((s) => s.cName)).toEqual(
      expect.arrayContaining([
        'xlb_counter',
        'xlb_config',
        'xlb_flow_key',
        'xlb_backend',
        'xlb_service',
      ]),
    );
    expect(abiEnums.map((e) => e.cName)).toEqual(
      expect.arrayContaining(['xlb_drop', 'xlb_outcome', 'xlb_event', 'xlb_config_flag']),
    );
  });

  it('catches a field whose size or offset drifted', () => {
    const btf = Btf.fromObject(entryObjects()[0]!);
    const drifted = struct('xlb_config', {
      abi_version: u32,
      hash_seed: u32,
      mtu: u32, // C has __u16: everything after it moves
      flags: u8,
      _pad0: pad(1),
      node_ipv4_be: ipv4,
      node_ipv6: ipv6,
      hz: u32,
      flow_cache_size: u32,
    });
    const problems = compareStruct(btf, drifted);
    expect(problems).toContain('xlb_config.mtu: size C 2, TypeScript 4');
    expect(problems).toContain('xlb_config.flags: offset C 10, TypeScript 12');
    expect(problems.some((p) => p.startsWith('struct xlb_config: size C 40'))).toBe(true);
  });

  it('catches missing and extra fields, missing structs and changed enum values', () => {
    const btf = Btf.fromObject(entryObjects()[0]!);
    const missing = struct('xlb_config', {
      abi_version: u32,
      hash_seed: u32,
      mtu: u16,
      flags: u8,
      extra: u8,
    });
    const problems = compareStruct(btf, missing);
    expect(problems).toContain('xlb_config.extra: in TypeScript, not in C');
    expect(
      problems.some((p) => p.includes('field node_ipv6 (offset 16) missing in TypeScript')),
    ).toBe(true);
    expect(compareStruct(btf, struct('xlb_nonexistent', { a: u32 }))).toEqual([
      'struct xlb_nonexistent: not in BTF',
    ]);
    const renumbered = cEnum('xlb_drop', 'XLB_DROP_', { ...XlbDrop.values, FRAGMENT: 42 });
    expect(compareEnum(btf, renumbered)).toEqual(['XLB_DROP_FRAGMENT: C 1, TypeScript 42']);
  });

  it('encodes and decodes ABI structs losslessly', () => {
    const counter = { packets: 2n ** 63n + 5n, bytes: 123456789n };
    expect(XlbCounter.decode(XlbCounter.encode(counter))).toEqual(counter);
    const config = {
      abi_version: 1,
      hash_seed: 0xffffffff,
      mtu: 1500,
      flags: 0,
      node_ipv4_be: '203.0.113.9',
      node_ipv6: '2001:db8::9',
      hz: 250,
      flow_cache_size: 65536,
    };
    const bytes = XlbConfig.encode(config);
    expect(bytes.length).toBe(40);
    expect([...bytes.subarray(12, 16)]).toEqual([203, 0, 113, 9]); // network order
    expect(XlbConfig.decode(bytes)).toEqual(config);
    expect(() => XlbConfig.encode({ ...config, mtu: 70000 })).toThrow(/out of range/);
    expect(() => XlbConfig.encode({ ...config, node_ipv4_be: '2001:db8::1' })).toThrow(
      /not an IPv4 address/,
    );
  });
});
