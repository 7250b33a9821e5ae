// What the datapath's output frames must look like. Hand-written checks run on
// every frame the program changed (cheap, exact); the packet dissector backs
// them up (on every frame sent on, and on a sample of those rewritten and
// passed), so a frame the hand checks misread still gets a second opinion.
import {
  BACKENDS,
  GW1_MAC as GW1_MAC_TEXT,
  GW_MAC as GW_MAC_TEXT,
  MTU,
  NODE4,
  NODE6,
  REMOTE,
} from './world.js';
import { parseIPv4, parseIPv6, parseMac } from '../packet/addr.js';
import { checksumVerifies, ipv6PseudoHeader } from '../packet/checksum.js';
import { dissect, formatFields } from '../packet/index.js';
import { XdpAction } from '../../../native/index.js';

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const GW_MAC = parseMac(GW_MAC_TEXT);
const GW1_MAC = parseMac(GW1_MAC_TEXT);
const NODE4_B = parseIPv4(NODE4);
const NODE6_B = parseIPv6(NODE6);
const TX_NODE = { 4: parseIPv4(REMOTE.tx.v4), 6: parseIPv6(REMOTE.tx.v6) };
const REDIRECT_NODE = { 4: parseIPv4(REMOTE.redirect.v4), 6: parseIPv6(REMOTE.redirect.v6) };
const KERNEL_NODE = { 4: parseIPv4(REMOTE.kernel.v4), 6: parseIPv6(REMOTE.kernel.v6) };
const LOCAL_PODS = BACKENDS.filter((b) => b.local).map((b) =>
  b.address.includes(':') ? parseIPv6(b.address) : parseIPv4(b.address),
);

export interface L3 {
  /** Offset of the IP header. */
  off: number;
  version: 4 | 6;
}

/** Ethernet, up to two VLAN tags, then an IP header of the version the ethertype says. */
export function l3Of(frame: Buffer): L3 | string {
  if (frame.length < 14) return 'shorter than an Ethernet header';
  let off = 12;
  let type = frame.readUInt16BE(off);
  for (let i = 0; i < 2 && (type === 0x8100 || type === 0x88a8); i++) {
    off += 4;
    if (off + 2 > frame.length) return 'VLAN tag cut short';
    type = frame.readUInt16BE(off);
  }
  off += 2;
  if (type !== ETH_IPV4 && type !== ETH_IPV6) return `ethertype 0x${type.toString(16)} is not IP`;
  return { off, version: type === ETH_IPV4 ? 4 : 6 };
}

/** Ethernet + a complete, self-consistent IPv4 or IPv6 header; returns the problem or the header. */
export function parsesAsIp(frame: Buffer): L3 | string {
  const l3 = l3Of(frame);
  if (typeof l3 === 'string') return l3;
  const { off, version } = l3;
  if (version === 4) {
    if (off + 20 > frame.length) return 'IPv4 header cut short';
    const ihl = (frame[off]! & 0x0f) * 4;
    if (frame[off]! >> 4 !== 4) return `IPv4 ethertype, version ${frame[off]! >> 4}`;
    if (ihl < 20) return `IPv4 IHL ${ihl / 4}`;
    const tot = frame.readUInt16BE(off + 2);
    if (tot < ihl || off + tot > frame.length) {
      return `IPv4 total length ${tot} (header ${ihl}, ${frame.length - off} bytes present)`;
    }
  } else {
    if (off + 40 > frame.length) return 'IPv6 header cut short';
    if (frame[off]! >> 4 !== 6) return `IPv6 ethertype, version ${frame[off]! >> 4}`;
    const plen = frame.readUInt16BE(off + 4);
    if (off + 40 + plen > frame.length) {
      return `IPv6 payload length ${plen} (${frame.length - off - 40} bytes present)`;
    }
  }
  return l3;
}

/** The dissector's view: Ethernet, then the IP header of the expected version, complete. */
export function dissectorSaysIp(frame: Buffer, version: 4 | 6, fresh: boolean): string | undefined {
  const fields = dissect(frame);
  const ip = `ipv${version}`;
  const has = (path: string): boolean => fields.some((f) => f.path === path);
  const problem = ((): string | undefined => {
    if (!has('eth.type')) return 'no Ethernet header';
    if (!fields.some((f) => f.path === `${ip}.version` && f.value === version)) {
      return `no ${ip} header`;
    }
    if (!has(`${ip}.dst`)) return `${ip} header incomplete`;
    const outer = fields.filter((f) => !f.path.includes('inner.'));
    const bad = outer.find(
      (f) =>
        (fresh && (f.path === 'truncated' || f.path === 'error')) ||
        (f.path === `${ip}.totalLength` && f.note !== undefined) ||
        (f.path === `${ip}.payloadLength` && f.note !== undefined) ||
        // Headers the program wrote itself must carry right checksums.
        (fresh &&
          /^(ipv4|icmp|icmpv6)\.checksum$/.test(f.path) &&
          f.note?.startsWith('correct') !== true),
    );
    return bad ? `dissector: ${bad.path} = ${String(bad.value)} ${bad.note ?? ''}` : undefined;
  })();
  return problem === undefined ? undefined : `${problem}\n${formatFields(fields)}`;
}

const eq = (a: Buffer, at: number, b: Buffer): boolean =>
  a.length >= at + b.length && a.compare(b, 0, b.length, at, at + b.length) === 0;

/**
 * A tunnel to another node: this node as source, `want.node` as destination,
 * Ethernet from the FIB (`want.mac`, unless the kernel still has to resolve
 * it), the client's IP packet unchanged inside, and all of it within the MTU.
 */
function checkTunnel(
  input: Buffer,
  inL3: L3,
  output: Buffer,
  ip: L3,
  want: { node: Buffer; mac?: Buffer; what: string },
): string | undefined {
  const { off, version } = ip;
  const hlen = version === 4 ? 20 : 40;
  const proto = version === 4 ? output[off + 9]! : output[off + 6]!;
  const src = output.subarray(off + (version === 4 ? 12 : 8), off + (version === 4 ? 16 : 24));
  const dst = output.subarray(off + (version === 4 ? 16 : 24), off + (version === 4 ? 20 : 40));
  if (off !== 14) return `tunnel frame has ${off - 14} bytes of VLAN tags`;
  if (version !== inL3.version) return `IPv${inL3.version} in, IPv${version} tunnel out`;
  if (proto !== (version === 4 ? 4 : 41)) return `IPv${version} tunnel carrying protocol ${proto}`;
  if (version === 4 && output[off]! !== 0x45) return 'outer IPv4 header has options';
  if (version === 4 && !checksumVerifies(output.subarray(off, off + 20))) {
    return 'outer IPv4 header checksum is wrong';
  }
  if (!src.equals(version === 4 ? NODE4_B : NODE6_B)) return 'tunnel source is not this node';
  if (!dst.equals(want.node)) return `tunnel to the wrong node for ${want.what}`;
  if (want.mac && !eq(output, 0, want.mac)) return "destination MAC is not the next hop's";
  // The client's IP packet, unchanged; bytes past its length (a trailer) may go along or not.
  const carried = output.subarray(off + hlen);
  const outerLen = version === 4 ? output.readUInt16BE(off + 2) - 20 : output.readUInt16BE(off + 4);
  const innerLen =
    inL3.version === 4 ? input.readUInt16BE(inL3.off + 2) : 40 + input.readUInt16BE(inL3.off + 4);
  if (outerLen !== innerLen) {
    return `outer IP length covers ${outerLen} bytes, the client's packet is ${innerLen}`;
  }
  if (carried.length < innerLen || !eq(input, inL3.off, carried)) {
    return "the tunnel does not carry the client's packet unchanged";
  }
  // The uplink's MTU is what `mtu` promises encapsulated frames fit in: the outer
  // length field is not enough, every byte after the Ethernet header goes on the wire.
  if (output.length - off > MTU) {
    return (
      `tunnel frame has ${output.length - off} bytes after its Ethernet header, more than the ` +
      `MTU of ${MTU}: outer IP length ${hlen + outerLen}, and the ${carried.length - innerLen} ` +
      `bytes past the client's IP length went along`
    );
  }
  return undefined;
}

/**
 * Checks a frame the program changed and handed to the kernel (XDP_PASS): it
 * can only be for a pod on this node (DNAT, an ICMP error rewritten for the
 * pod, either possibly decapsulated first), or a tunnel whose next hop the
 * kernel still has to resolve.
 */
export function checkPassed(input: Buffer, output: Buffer): string | undefined {
  const ip = parsesAsIp(output);
  if (typeof ip === 'string') return ip;
  const { off, version } = ip;
  const dst = output.subarray(off + (version === 4 ? 16 : 24), off + (version === 4 ? 20 : 40));
  if (LOCAL_PODS.some((pod) => pod.equals(dst))) return undefined;
  const inL3 = l3Of(input);
  if (typeof inL3 === 'string') return `input that was rewritten does not parse: ${inL3}`;
  if (dst.equals(KERNEL_NODE[version])) {
    return checkTunnel(input, inL3, output, ip, { node: KERNEL_NODE[version], what: 'XDP_PASS' });
  }
  return 'rewritten, but neither for a pod on this node nor a tunnel the kernel forwards';
}

/**
 * Checks a frame the program sent back out (XDP_TX) or to another interface
 * (XDP_REDIRECT): either the client's packet in a tunnel to the backend's
 * node, or a fragmentation-needed / packet-too-big answer to the client.
 * Returns the problem, or undefined.
 */
export function checkSent(verdict: number, input: Buffer, output: Buffer): string | undefined {
  const ip = parsesAsIp(output);
  if (typeof ip === 'string') return `output does not parse: ${ip}`;
  const inL3 = l3Of(input);
  if (typeof inL3 === 'string') return `input that was sent on does not parse: ${inL3}`;
  const { off, version } = ip;
  const proto = version === 4 ? output[off + 9]! : output[off + 6]!;
  const alen = version === 4 ? 4 : 16;
  const src = output.subarray(off + (version === 4 ? 12 : 8), off + (version === 4 ? 16 : 24));
  const dst = output.subarray(off + (version === 4 ? 16 : 24), off + (version === 4 ? 20 : 40));
  const hlen = version === 4 ? 20 : 40;
  if (version === 4 && !checksumVerifies(output.subarray(off, off + 20))) {
    return 'outer IPv4 header checksum is wrong';
  }
  if (version !== inL3.version) return `IPv${inL3.version} in, IPv${version} out`;

  if (proto === 4 || proto === 41) {
    const tx = verdict === XdpAction.tx;
    return checkTunnel(input, inL3, output, ip, {
      node: tx ? TX_NODE[version] : REDIRECT_NODE[version],
      mac: tx ? GW_MAC : GW1_MAC,
      what: tx ? 'XDP_TX' : 'XDP_REDIRECT',
    });
  }

  if (proto === 1 || proto === 58) {
    // Too big to tunnel: the answer goes back where the packet came from.
    if (verdict !== XdpAction.tx) return 'an ICMP answer must leave by XDP_TX';
    if ((proto === 1) !== (version === 4)) return `IPv${version} carrying ICMP protocol ${proto}`;
    if (!eq(output, 0, input.subarray(6, 12)) || !eq(output, 6, input.subarray(0, 6))) {
      return 'MAC addresses are not swapped';
    }
    const iSrc = input.subarray(inL3.off + (version === 4 ? 12 : 8)).subarray(0, alen);
    const iDst = input.subarray(inL3.off + (version === 4 ? 16 : 24)).subarray(0, alen);
    if (!dst.equals(iSrc) || !src.equals(iDst)) return 'ICMP answer not from the VIP to the client';
    const msg = output.subarray(off + hlen);
    const quoteLen = version === 4 ? 68 : 128;
    if (msg.length !== 8 + quoteLen)
      return `ICMP message is ${msg.length} bytes, not ${8 + quoteLen}`;
    if (version === 4) {
      if (msg[0] !== 3 || msg[1] !== 4) return `ICMP type ${msg[0]} code ${msg[1]}, not 3/4`;
      if (msg.readUInt16BE(6) !== MTU - 20) return `ICMP next-hop MTU ${msg.readUInt16BE(6)}`;
      if (!checksumVerifies(msg)) return 'ICMP checksum is wrong';
    } else {
      if (msg[0] !== 2 || msg[1] !== 0) return `ICMPv6 type ${msg[0]} code ${msg[1]}, not 2/0`;
      if (msg.readUInt32BE(4) !== Math.max(1280, MTU - 40))
        return `ICMPv6 MTU ${msg.readUInt32BE(4)}`;
      if (!checksumVerifies(ipv6PseudoHeader(src, dst, 58, msg.length), msg)) {
        return 'ICMPv6 checksum is wrong';
      }
    }
    if (!eq(msg, 8, input.subarray(inL3.off, inL3.off + quoteLen))) {
      return 'the quote is not the start of the packet';
    }
    return undefined;
  }
  return `sent a frame with outer protocol ${proto}, neither a tunnel nor ICMP`;
}

/** Checksum notes by path, and the source address of every IP header by nesting prefix. */
function checksumView(frame: Buffer): { notes: Map<string, string>; sources: Map<string, string> } {
  const notes = new Map<string, string>();
  const sources = new Map<string, string>();
  for (const f of dissect(frame)) {
    if (f.path.endsWith('.checksum') && f.note !== undefined) notes.set(f.path, f.note);
    const m = /^((?:inner\.)*)ipv[46]\.src$/.exec(f.path);
    if (m && !sources.has(m[1]!)) sources.set(m[1]!, String(f.value));
  }
  return { notes, sources };
}

/**
 * Checksums that were right in `input` and are wrong in `output`. Taking a
 * tunnel header off (or putting one on) shifts paths by one 'inner.'; which
 * way is told by where the outermost source address went. Quoted transport
 * checksums are left out: they cover bytes an ICMP quote does not carry, and
 * the datapath leaves them alone on purpose.
 */
export function brokenChecksums(input: Buffer, output: Buffer): string[] {
  const before = checksumView(input);
  const after = checksumView(output);
  const outerSrc = after.sources.get('');
  let toInput = (path: string): string => path;
  if (outerSrc !== before.sources.get('')) {
    if (outerSrc !== undefined && outerSrc === before.sources.get('inner.')) {
      toInput = (path) => `inner.${path}`; // decapsulated
    } else if (after.sources.get('inner.') === before.sources.get('')) {
      toInput = (path) => path.replace(/^inner\./, ''); // encapsulated
    } else {
      return [];
    }
  }
  const broken: string[] = [];
  for (const [path, note] of after.notes) {
    if (!note.startsWith('WRONG') || /icmp(v6)?\.inner\.(tcp|udp)\.checksum$/.test(path)) continue;
    if (before.notes.get(toInput(path))?.startsWith('correct') === true) {
      broken.push(`${path} ${note}`);
    }
  }
  return broken;
}
