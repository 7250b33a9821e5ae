// The BGPAdvertisement custom resource: which pools' addresses are announced
// and with which attributes. An LB IP is announced only when an advertisement
// selects its pool (as in MetalLB), so adding pools never leaks routes.
import { z } from 'zod';

import { CommunityError, parseCommunity, parseLargeCommunity } from '../bgp/communities.js';

import { strictMap } from './common.js';
import { parseOrThrow } from './errors.js';
import { clusterMetaSchema } from './meta.js';

export const BGPADVERTISEMENT_API_VERSION = 'xlb.dev/v1alpha1';
export const BGPADVERTISEMENT_KIND = 'BGPAdvertisement';

function checked(parse: (text: string) => unknown) {
  return z.string({ error: 'expected a string' }).superRefine((text, ctx) => {
    try {
      parse(text);
    } catch (e) {
      if (!(e instanceof CommunityError)) throw e;
      ctx.addIssue({ code: 'custom', message: e.message });
    }
  });
}

const names = (what: string) =>
  z.array(z.string({ error: `each entry is the name of a ${what}` }).min(1), {
    error: `a list of ${what} names`,
  });

const LOCAL_PREF = 'expected an integer from 0 to 4294967295 (unquoted)';

export const bgpAdvertisementSpecSchema = strictMap('a BGPAdvertisement spec', {
  /** IPPool names whose addresses this advertisement covers; every pool when left out. */
  ipPools: names('IPPool').optional(),
  /** BGPPeer names to announce to; every peer when left out. */
  peers: names('BGPPeer').optional(),
  /** '65000:100' or a well-known name (no-export, ...). */
  communities: z.array(checked(parseCommunity)).default([]),
  /** '65000:1:2'. */
  largeCommunities: z.array(checked(parseLargeCommunity)).default([]),
  /** LOCAL_PREF, sent to internal (iBGP) peers only. */
  localPreference: z
    .number({ error: LOCAL_PREF })
    .int({ error: LOCAL_PREF })
    .min(0, { error: LOCAL_PREF })
    .max(4294967295, { error: LOCAL_PREF })
    .optional(),
});

export const bgpAdvertisementSchema = z.looseObject({
  apiVersion: z.literal(BGPADVERTISEMENT_API_VERSION, {
    error: `a BGPAdvertisement's apiVersion is ${BGPADVERTISEMENT_API_VERSION}`,
  }),
  kind: z.literal(BGPADVERTISEMENT_KIND, { error: `expected kind ${BGPADVERTISEMENT_KIND}` }),
  metadata: clusterMetaSchema(BGPADVERTISEMENT_KIND, 'dns1123Subdomain'),
  spec: bgpAdvertisementSpecSchema,
});

export type BGPAdvertisement = z.output<typeof bgpAdvertisementSchema>;
export type BGPAdvertisementSpec = z.output<typeof bgpAdvertisementSpecSchema>;

/** Validates and defaults a BGPAdvertisement; throws InvalidResourceError naming each bad field. */
export function parseBGPAdvertisement(obj: unknown): BGPAdvertisement {
  return parseOrThrow(bgpAdvertisementSchema, BGPADVERTISEMENT_KIND, obj);
}
