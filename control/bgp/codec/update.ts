// UPDATE (RFC 4271 section 4.3): withdrawn IPv4 routes, path attributes,
// IPv4 NLRI; IPv6 travels inside the MP attributes (RFC 4760). Also the
// End-of-RIB marker of each family (RFC 4724 section 2).
import {
  AttrType,
  DEFAULT_CONTEXT,
  decodeAttributes,
  encodeAttributes,
  type CodecContext,
  type PathAttributes,
} from './attributes.js';
import { ErrorCode, UpdateSubcode, fail, ok, type Decoded } from './errors.js';
import { decodePrefixes, encodePrefixes, parsePrefix, type Family } from './prefix.js';

export interface UpdateMessage {
  type: 'update';
  /** IPv4 prefixes withdrawn. */
  withdrawn: string[];
  attributes: PathAttributes;
  /** IPv4 prefixes announced with the attributes. */
  nlri: string[];
}

function ipv4Prefixes(list: readonly string[]) {
  return list.map((text) => {
    const p = parsePrefix(text);
    if (p.family !== 'ipv4') {
      throw new RangeError(`${text} is IPv6: it belongs in MP_REACH_NLRI / MP_UNREACH_NLRI`);
    }
    return p;
  });
}

export function encodeUpdateBody(m: UpdateMessage, ctx: CodecContext = DEFAULT_CONTEXT): Buffer {
  const withdrawn = encodePrefixes(ipv4Prefixes(m.withdrawn));
  const attrs = encodeAttributes(m.attributes, ctx);
  const nlri = encodePrefixes(ipv4Prefixes(m.nlri));
  const wl = Buffer.alloc(2);
  wl.writeUInt16BE(withdrawn.length);
  const al = Buffer.alloc(2);
  al.writeUInt16BE(attrs.length);
  return Buffer.concat([wl, withdrawn, al, attrs, nlri]);
}

function updateError(subcode: number, reason: string, data?: Buffer): Decoded<never> {
  return fail(ErrorCode.Update, subcode, reason, data);
}

export function decodeUpdateBody(
  body: Buffer,
  ctx: CodecContext = DEFAULT_CONTEXT,
): Decoded<UpdateMessage> {
  if (body.length < 4) {
    return updateError(UpdateSubcode.MalformedAttributeList, `UPDATE body of ${body.length} bytes`);
  }
  const wLen = body.readUInt16BE(0);
  if (2 + wLen + 2 > body.length) {
    return updateError(
      UpdateSubcode.MalformedAttributeList,
      `withdrawn routes length ${wLen} runs past the message`,
    );
  }
  const aLen = body.readUInt16BE(2 + wLen);
  const aStart = 4 + wLen;
  if (aStart + aLen > body.length) {
    return updateError(
      UpdateSubcode.MalformedAttributeList,
      `total path attribute length ${aLen} runs past the message`,
    );
  }
  const withdrawn = decodePrefixes(body.subarray(2, 2 + wLen), 'ipv4');
  if (!Array.isArray(withdrawn)) {
    return updateError(UpdateSubcode.InvalidNetworkField, `withdrawn routes: ${withdrawn.error}`);
  }
  const attributes = decodeAttributes(body.subarray(aStart, aStart + aLen), ctx);
  if (!attributes.ok) return attributes;
  const nlri = decodePrefixes(body.subarray(aStart + aLen), 'ipv4');
  if (!Array.isArray(nlri)) {
    return updateError(UpdateSubcode.InvalidNetworkField, `NLRI: ${nlri.error}`);
  }
  const a = attributes.value;
  const announces = nlri.length > 0 || (a.mpReach?.nlri.length ?? 0) > 0;
  if (announces) {
    const required: [number, unknown][] = [
      [AttrType.Origin, a.origin],
      [AttrType.AsPath, a.asPath],
    ];
    if (nlri.length > 0) required.push([AttrType.NextHop, a.nextHop]);
    for (const [type, value] of required) {
      if (value === undefined) {
        return updateError(
          UpdateSubcode.MissingWellKnownAttribute,
          `routes announced without attribute ${type}`,
          Buffer.from([type]),
        );
      }
    }
  }
  return ok({ type: 'update', withdrawn, attributes: a, nlri });
}

/** The End-of-RIB marker for a family: an UPDATE with nothing in it but the family. */
export function endOfRib(family: Family): UpdateMessage {
  return family === 'ipv4'
    ? { type: 'update', withdrawn: [], attributes: {}, nlri: [] }
    : {
        type: 'update',
        withdrawn: [],
        attributes: { mpUnreach: { family, withdrawn: [] } },
        nlri: [],
      };
}

/** The family an UPDATE is the End-of-RIB marker of, if it is one. */
export function endOfRibFamily(m: UpdateMessage): Family | undefined {
  if (m.withdrawn.length > 0 || m.nlri.length > 0) return undefined;
  const keys = Object.keys(m.attributes).filter((k) => k !== 'wire');
  if (keys.length === 0) return 'ipv4';
  const un = m.attributes.mpUnreach;
  if (keys.length === 1 && un !== undefined && un.withdrawn.length === 0) return un.family;
  return undefined;
}
