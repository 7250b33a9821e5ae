// Capabilities advertised in OPEN (RFC 5492). The ones xlb speaks are decoded
// into fields; any other is kept as its code and bytes, so an OPEN decodes and
// re-encodes to the same bytes whatever the peer offers.

export const Afi = { Ipv4: 1, Ipv6: 2 } as const;
export const Safi = { Unicast: 1 } as const;

export const CapabilityCode = {
  Multiprotocol: 1, // RFC 4760
  RouteRefresh: 2, // RFC 2918
  GracefulRestart: 64, // RFC 4724
  FourOctetAs: 65, // RFC 6793
} as const;

/** Restart Flags (the top 4 bits of the first two bytes) of the graceful restart capability. */
export const GracefulRestartFlag = { Restarting: 0x8, Notification: 0x4 } as const;
/** Per-family flag: forwarding state was preserved. */
export const GracefulRestartForwarding = 0x80;

export type Capability =
  | { kind: 'multiprotocol'; afi: number; safi: number }
  | { kind: 'routeRefresh' }
  | {
      kind: 'gracefulRestart';
      /** 4 bits: GracefulRestartFlag. */
      flags: number;
      /** Seconds, 12 bits. */
      restartTime: number;
      families: { afi: number; safi: number; flags: number }[];
    }
  | { kind: 'fourOctetAs'; asn: number }
  | { kind: 'unknown'; code: number; value: Buffer };

function one(code: number, value: Buffer): Buffer {
  if (value.length > 255) throw new RangeError(`capability ${code} value exceeds 255 bytes`);
  return Buffer.concat([Buffer.from([code, value.length]), value]);
}

function checkUint(name: string, v: number, bits: number): void {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits) {
    throw new RangeError(`${name} ${v} does not fit in ${bits} bits`);
  }
}

export function encodeCapability(c: Capability): Buffer {
  switch (c.kind) {
    case 'multiprotocol': {
      checkUint('AFI', c.afi, 16);
      checkUint('SAFI', c.safi, 8);
      const v = Buffer.alloc(4);
      v.writeUInt16BE(c.afi, 0);
      v[3] = c.safi;
      return one(CapabilityCode.Multiprotocol, v);
    }
    case 'routeRefresh':
      return one(CapabilityCode.RouteRefresh, Buffer.alloc(0));
    case 'gracefulRestart': {
      checkUint('graceful restart flags', c.flags, 4);
      checkUint('restart time', c.restartTime, 12);
      const v = Buffer.alloc(2 + 4 * c.families.length);
      v.writeUInt16BE((c.flags << 12) | c.restartTime, 0);
      c.families.forEach((f, i) => {
        checkUint('AFI', f.afi, 16);
        checkUint('SAFI', f.safi, 8);
        checkUint('family flags', f.flags, 8);
        v.writeUInt16BE(f.afi, 2 + 4 * i);
        v[4 + 4 * i] = f.safi;
        v[5 + 4 * i] = f.flags;
      });
      return one(CapabilityCode.GracefulRestart, v);
    }
    case 'fourOctetAs': {
      checkUint('ASN', c.asn, 32);
      const v = Buffer.alloc(4);
      v.writeUInt32BE(c.asn);
      return one(CapabilityCode.FourOctetAs, v);
    }
    case 'unknown':
      checkUint('capability code', c.code, 8);
      return one(c.code, c.value);
  }
}

/**
 * Decodes the value of an optional parameter of type 2 (a run of
 * capabilities). Returns the reason as a string when it is malformed.
 */
export function decodeCapabilities(bytes: Buffer): Capability[] | { error: string } {
  const out: Capability[] = [];
  let off = 0;
  while (off < bytes.length) {
    if (off + 2 > bytes.length) return { error: `capability header cut short at byte ${off}` };
    const code = bytes[off]!;
    const len = bytes[off + 1]!;
    if (off + 2 + len > bytes.length) {
      return { error: `capability ${code} of ${len} bytes runs past its optional parameter` };
    }
    const v = bytes.subarray(off + 2, off + 2 + len);
    off += 2 + len;
    const wrongLength = (): { error: string } => ({
      error: `capability ${code} has length ${len}`,
    });
    switch (code) {
      case CapabilityCode.Multiprotocol:
        if (len !== 4) return wrongLength();
        out.push({ kind: 'multiprotocol', afi: v.readUInt16BE(0), safi: v[3]! });
        break;
      case CapabilityCode.RouteRefresh:
        if (len !== 0) return wrongLength();
        out.push({ kind: 'routeRefresh' });
        break;
      case CapabilityCode.GracefulRestart: {
        if (len < 2 || (len - 2) % 4 !== 0) return wrongLength();
        const head = v.readUInt16BE(0);
        const families = [];
        for (let i = 2; i < len; i += 4) {
          families.push({ afi: v.readUInt16BE(i), safi: v[i + 2]!, flags: v[i + 3]! });
        }
        out.push({
          kind: 'gracefulRestart',
          flags: head >> 12,
          restartTime: head & 0xfff,
          families,
        });
        break;
      }
      case CapabilityCode.FourOctetAs:
        if (len !== 4) return wrongLength();
        out.push({ kind: 'fourOctetAs', asn: v.readUInt32BE(0) });
        break;
      default:
        out.push({ kind: 'unknown', code, value: Buffer.from(v) });
    }
  }
  return out;
}
