// Checks on an UPDATE that need the session: the codec has already checked
// the syntax. RFC 4271 section 6.3 lets a speaker insist that an external
// peer's AS_PATH starts with the peer's own AS (3/11 otherwise); most
// implementations do, and so does xlb unless told otherwise (route servers
// do not prepend).
import type { Family } from './codec/prefix.js';
import { ErrorCode, UpdateSubcode, fail, ok, type Decoded } from './codec/errors.js';
import type { UpdateMessage } from './codec/update.js';

export interface ReceivedUpdateContext {
  external: boolean;
  peerAs: number;
  enforceFirstAs: boolean;
}

export function checkReceivedUpdate(
  u: UpdateMessage,
  c: ReceivedUpdateContext,
): Decoded<UpdateMessage> {
  const announces = u.nlri.length > 0 || (u.attributes.mpReach?.nlri.length ?? 0) > 0;
  if (announces && c.external && c.enforceFirstAs) {
    const first = u.attributes.asPath?.[0];
    if (first?.type !== 'sequence' || first.asns[0] !== c.peerAs) {
      return fail(
        ErrorCode.Update,
        UpdateSubcode.MalformedAsPath,
        `AS_PATH from external peer AS ${c.peerAs} does not start with its AS`,
      );
    }
  }
  return ok(u);
}

/** The prefixes an UPDATE announces and withdraws, per family. */
export function routesOf(u: UpdateMessage): {
  announced: Record<Family, string[]>;
  withdrawn: Record<Family, string[]>;
} {
  const announced: Record<Family, string[]> = { ipv4: [...u.nlri], ipv6: [] };
  const withdrawn: Record<Family, string[]> = { ipv4: [...u.withdrawn], ipv6: [] };
  const reach = u.attributes.mpReach;
  if (reach !== undefined) announced[reach.family].push(...reach.nlri);
  const unreach = u.attributes.mpUnreach;
  if (unreach !== undefined) withdrawn[unreach.family].push(...unreach.withdrawn);
  return { announced, withdrawn };
}
