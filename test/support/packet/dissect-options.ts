// One field per option, its value a short readable summary ('mss 1460', 'lsrr ptr=4 ...'):
// options are compared as units in diffs, and a summary says more than kind/length/data.

import { formatIP } from './addr.js';
import { hex } from './bytes.js';
import type { Cursor } from './cursor.js';
import { IPV4_OPTION_NAMES } from './ipv4-options.js';
import { IPV6_OPTION_NAMES, parseTlvOptions } from './ipv6-options.js';
import { parseKindLengthOptions, type KindLengthOption } from './kind-length-options.js';
import { TCP_OPTION_NAMES } from './tcp-options.js';

const ROUTE_OPTIONS: ReadonlySet<number> = new Set([7, 131, 137]);

function addressList(data: Buffer, size: 4 | 16): string {
  const out: string[] = [];
  for (let at = 0; at + size <= data.length; at += size)
    out.push(formatIP(data.subarray(at, at + size)));
  return out.join(' ');
}

function generic(name: string | undefined, kind: number, data: Buffer): string {
  return `${name ?? `kind=${kind}`} data=${hex(data)}`;
}

function describeIPv4Option(o: KindLengthOption): string {
  const name = IPV4_OPTION_NAMES.get(o.kind);
  if (o.malformed) return `malformed ${hex(o.data)}`;
  if (o.kind <= 1) return name ?? '';
  if (ROUTE_OPTIONS.has(o.kind) && o.data.length >= 1) {
    return `${name} ptr=${o.data[0]} ${addressList(o.data.subarray(1), 4)}`.trimEnd();
  }
  return generic(name, o.kind, o.data);
}

function describeTcpOption(o: KindLengthOption): string {
  const d = o.data;
  if (o.malformed) return `malformed ${hex(d)}`;
  if (o.kind === 2 && d.length === 2) return `mss ${d.readUInt16BE(0)}`;
  if (o.kind === 3 && d.length === 1) return `wscale ${d[0]}`;
  if (o.kind === 4 && d.length === 0) return 'sackOk';
  if (o.kind === 5 && d.length % 8 === 0) {
    const blocks: string[] = [];
    for (let at = 0; at < d.length; at += 8)
      blocks.push(`${d.readUInt32BE(at)}-${d.readUInt32BE(at + 4)}`);
    return `sack ${blocks.join(' ')}`.trimEnd();
  }
  if (o.kind === 8 && d.length === 8) return `timestamp ${d.readUInt32BE(0)} ${d.readUInt32BE(4)}`;
  if (o.kind <= 1) return TCP_OPTION_NAMES.get(o.kind) ?? '';
  return generic(undefined, o.kind, d);
}

function emitKindLength(
  c: Cursor,
  path: string,
  at: number,
  area: Buffer,
  describe: (o: KindLengthOption) => string,
): void {
  const parsed = parseKindLengthOptions(area);
  parsed.options.forEach((o, i) => c.emit(`${path}[${i}]`, describe(o), at + o.offset, o.length));
  if (parsed.padding !== undefined) {
    const [offset, length] = parsed.padding;
    c.emit(`${path}.padding`, hex(area.subarray(offset, offset + length)), at + offset, length);
  }
}

export function emitIPv4Options(c: Cursor, at: number, area: Buffer): void {
  emitKindLength(c, 'ipv4.opt', at, area, describeIPv4Option);
}

export function emitTcpOptions(c: Cursor, at: number, area: Buffer): void {
  emitKindLength(c, 'tcp.opt', at, area, describeTcpOption);
}

function describeTlv(type: number, data: Buffer, malformed: boolean): string {
  const name = IPV6_OPTION_NAMES.get(type);
  if (malformed) return `malformed ${hex(data)}`;
  if (type === 0) return 'pad1';
  if (type === 1) return `padn ${data.length}`;
  if (type === 5 && data.length === 2) return `router-alert ${data.readUInt16BE(0)}`;
  if (type === 0xc9 && data.length === 16) return `home-address ${formatIP(data)}`;
  return `${name ?? `type=0x${type.toString(16).padStart(2, '0')}`} data=${hex(data)}`;
}

export function emitTlvOptions(c: Cursor, path: string, at: number, area: Buffer): void {
  parseTlvOptions(area).forEach((o, i) => {
    c.emit(
      `${path}[${i}]`,
      describeTlv(o.type, o.data, o.malformed === true),
      at + o.offset,
      o.length,
    );
  });
}
