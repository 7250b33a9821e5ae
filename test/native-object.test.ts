import { beforeAll, describe, expect, it } from 'vitest';

import { XlbConfig, ABI_VERSION } from '../control/datapath/abi.js';
import { bpfObjectPath } from '../control/paths.js';
import { BpfObject, isBpfError, XdpAction } from '../native/index.js';
import { u32le } from './support/bytes.js';
import { requirePrivileges } from './support/privileged.js';

const frame = Buffer.alloc(64, 0xab);

describe('BpfObject', () => {
  beforeAll(() => requirePrivileges('native-object'));

  it('lists programs, maps and globals before load', () => {
    using obj = BpfObject.open(bpfObjectPath('test/fixture'));
    expect(obj.programs().map((p) => p.name)).toEqual(['fixture_xdp', 'fixture_mim', 'fixture_tc']);
    expect(obj.programs().find((p) => p.name === 'fixture_tc')?.section).toBe('tc');
    const maps = obj.maps().filter((m) => !m.internal);
    expect(maps.map((m) => m.name).sort()).toEqual(
      [
        'fixture_array',
        'fixture_hash',
        'fixture_lpm',
        'fixture_lru',
        'fixture_outer',
        'fixture_percpu',
        'fixture_percpu_hash',
      ].sort(),
    );
    expect(obj.globals()).toContainEqual({
      section: '.rodata',
      name: 'fixture_verdict',
      offset: expect.any(Number) as number,
      size: 4,
    });
  });

  it('sets a read-only global before load, and the program acts on it', () => {
    for (const [verdict, name] of [
      [XdpAction.drop, 'drop'],
      [XdpAction.tx, 'tx'],
      [XdpAction.pass, 'pass'],
    ] as const) {
      using obj = BpfObject.open(bpfObjectPath('test/fixture'));
      obj.setGlobal('fixture_verdict', u32le(verdict));
      obj.load();
      using prog = obj.program('fixture_xdp');
      expect(prog.testRun({ data: frame }).retval, name).toBe(verdict);
    }
  });

  it('loads the xlb XDP object with its config global and reads it back from .rodata', () => {
    using obj = BpfObject.open(bpfObjectPath('xlb_xdp'));
    const config = {
      abi_version: ABI_VERSION,
      hash_seed: 0xdeadbeef,
      mtu: 9000,
      flags: 0,
      node_ipv4_be: '192.0.2.7',
      node_ipv6: '2001:db8::7',
      hz: 250,
      flow_cache_size: 1024,
    };
    obj.setGlobal('xlb_config', XlbConfig.encode(config));
    obj.load();
    const rodata = obj.maps().find((m) => m.internal && m.name.endsWith('.rodata'));
    expect(rodata).toBeDefined();
    using map = obj.map(rodata!.name);
    const global = obj.globals().find((g) => g.name === 'xlb_config')!;
    const value = map.lookup(Buffer.alloc(4))!;
    expect(XlbConfig.decode(value.subarray(global.offset))).toEqual(config);
  });

  it('rejects wrong sizes and unknown names with clear errors', () => {
    using obj = BpfObject.open(bpfObjectPath('test/fixture'));
    expect(() => obj.setGlobal('fixture_verdict', Buffer.alloc(2))).toThrow(
      /is 4 bytes, value has 2/,
    );
    expect(() => obj.setGlobal('no_such_global', u32le(1))).toThrow(
      /no global variable named 'no_such_global'/,
    );
    expect(() => obj.program('no_such_prog')).toThrow(/no program named 'no_such_prog'/);
    expect(() => obj.map('fixture_hash')).toThrow(/load first/);
    obj.load();
    expect(() => obj.setGlobal('fixture_verdict', u32le(1))).toThrow(/only possible before load/);
    expect(() => obj.load()).toThrow(/only possible before load/);
  });

  it('throws an error with errno and the libbpf message for a missing file', () => {
    let err: unknown;
    try {
      BpfObject.open('/nonexistent/xlb.o');
    } catch (e) {
      err = e;
    }
    expect(isBpfError(err)).toBe(true);
    if (!isBpfError(err)) return;
    expect(err.errno).toBe(2);
    expect(err.code).toBe('ENOENT');
    expect(err.message).toMatch(
      /open BPF object \/nonexistent\/xlb\.o: No such file or directory \(ENOENT, errno 2\)/,
    );
  });

  it('carries the verifier log when the kernel rejects a program', () => {
    using obj = BpfObject.open(bpfObjectPath('test/reject'));
    let err: unknown;
    try {
      obj.load();
    } catch (e) {
      err = e;
    }
    expect(isBpfError(err)).toBe(true);
    if (!isBpfError(err)) return;
    expect(err.code).toBe('EACCES');
    expect(err.verifierLog).toMatch(/invalid access to packet/);
    expect(err.message).toMatch(/load BPF object: Permission denied/);
    expect(err.message).toMatch(/invalid access to packet/);
  });

  it('loads only the programs left on autoload', () => {
    using obj = BpfObject.open(bpfObjectPath('test/fixture'));
    obj.setAutoload('fixture_tc', false);
    obj.load();
    using xdpProg = obj.program('fixture_xdp');
    expect(xdpProg.info.name).toBe('fixture_xdp');
    expect(() => obj.program('fixture_tc')).toThrow(/not loaded/);
  });

  it('keeps programs and maps usable after the object is closed', () => {
    const obj = BpfObject.open(bpfObjectPath('test/fixture'));
    obj.load();
    using prog = obj.program('fixture_xdp');
    using map = obj.map('fixture_hash');
    obj.close();
    expect(() => obj.programs()).toThrow(/closed/);
    map.update(u32le(1), Buffer.alloc(8, 1));
    expect(map.lookup(u32le(1))).toEqual(Buffer.alloc(8, 1));
    expect(prog.testRun({ data: frame }).retval).toBe(XdpAction.pass);
  });

  it('passes an XDP context in and reads it back out', () => {
    using obj = BpfObject.open(bpfObjectPath('test/fixture'));
    obj.load();
    using prog = obj.program('fixture_xdp');
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
    const ctx = (ifindex: number): Buffer => {
      const c = Buffer.alloc(24);
      c.writeUInt32LE(frame.length, 4);
      c.writeUInt32LE(ifindex, 12);
      return c;
    };
    const r = prog.testRun({ data: frame, ctx: ctx(1), ctxOutSize: 24 });
    expect(r.retval).toBe(XdpAction.pass);
    expect(r.ctx.readUInt32LE(4)).toBe(frame.length);
    expect(r.ctx.readUInt32LE(12)).toBe(1); // lo
    // An interface that does not exist is refused, not silently ignored.
    expect(() => prog.testRun({ data: frame, ctx: ctx(987654), ctxOutSize: 24 })).toThrow(
      /ENODEV|EINVAL/,
    );
  });

  it('runs a program asynchronously with repeat and reports a duration', async () => {
    using obj = BpfObject.open(bpfObjectPath('test/fixture'));
    obj.load();
    using prog = obj.program('fixture_xdp');
    using stats = obj.map('fixture_percpu');
    const r = await prog.testRunAsync({ data: frame, repeat: 1000 });
    expect(r.retval).toBe(XdpAction.pass);
    expect(r.durationNs).toBeGreaterThan(0);
    expect(r.data).toEqual(frame);
    const perCpu = stats.lookupPerCpu(u32le(0))!;
    const total = perCpu.reduce((s, b) => s + b.readBigUInt64LE(0), 0n);
    expect(total).toBe(1000n);
  });
});
