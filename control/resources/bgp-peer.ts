// The BGPPeer custom resource: one router this node's BGP speaker talks to.
// This module only says what a valid peer looks like; turning it into a
// session is control/bgp/config.ts.
import { z } from 'zod';

import { strictMap, ipSchema, portNumberSchema } from './common.js';
import { parseOrThrow } from './errors.js';
import { labelSelectorSchema } from './label-selector.js';
import { clusterMetaSchema } from './meta.js';

export const BGPPEER_API_VERSION = 'xlb.dev/v1alpha1';
export const BGPPEER_KIND = 'BGPPeer';

const ASN = 'expected an AS number (an integer from 1 to 4294967295, unquoted)';
const asnSchema = z
  .number({ error: ASN })
  .int({ error: ASN })
  .min(1, { error: ASN })
  .max(4294967295, { error: ASN });

/** A whole number in min..max, with one message for every way to miss it. */
const whole = (min: number, max: number, unit: string) => {
  const error = `expected a whole number of ${unit} from ${min} to ${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};

const flag = (fallback: boolean) =>
  z.boolean({ error: 'expected true or false (unquoted)' }).default(fallback);

export const secretKeyRefSchema = strictMap('a Secret reference', {
  /** The Secret's namespace; the agent's own namespace when left out. */
  namespace: z.string().min(1).optional(),
  name: z.string({ error: 'expected the name of the Secret holding the MD5 password' }).min(1),
  /** The key inside the Secret's data. */
  key: z.string().min(1).default('password'),
});

export const gracefulRestartSchema = strictMap('graceful restart settings', {
  enabled: flag(false),
  /** Seconds the peer keeps our routes after the session drops (RFC 4724 restart time). */
  restartTime: whole(1, 4095, 'seconds').default(120),
});

export const bfdSchema = strictMap('BFD settings', {
  enabled: flag(false),
  /** Milliseconds. */
  minRxMs: whole(1, 60000, 'milliseconds').default(300),
  minTxMs: whole(1, 60000, 'milliseconds').default(300),
  /** Missed packets before the session is declared down. */
  detectMultiplier: whole(1, 255, 'packets').default(3),
});

export const bgpPeerSpecSchema = strictMap('a BGPPeer spec', {
  peerAddress: ipSchema,
  peerASN: asnSchema,
  localASN: asnSchema,
  port: portNumberSchema.default(179),
  /** Source address of our connections; by default the kernel picks. */
  sourceAddress: ipSchema.optional(),
  /** Hold time offered, seconds: 0 (no keepalives) or 3..65535. */
  holdTime: whole(0, 65535, 'seconds')
    .refine((v) => v === 0 || v >= 3, {
      error: 'expected 0 (no keepalives) or a whole number of seconds from 3 to 65535',
    })
    .default(90),
  /** Seconds between keepalives; must be below the hold time (a third of it when left out). */
  keepaliveTime: whole(1, 21845, 'seconds').optional(),
  /** Seconds one connection attempt may take before the next. */
  connectRetryTime: whole(1, 65535, 'seconds').default(30),
  passwordSecretRef: secretKeyRefSchema.optional(),
  /** Allow the peer to be more than one hop away (TTL 255 instead of 1). */
  ebgpMultiHop: flag(false),
  gracefulRestart: gracefulRestartSchema.optional(),
  bfd: bfdSchema.optional(),
  /** Which nodes peer with this router; every node when left out. */
  nodeSelector: labelSelectorSchema.optional(),
  /** Only accept the peer's connections, never connect. */
  passive: flag(false),
});

export const bgpPeerSchema = z.looseObject({
  apiVersion: z.literal(BGPPEER_API_VERSION, {
    error: `a BGPPeer's apiVersion is ${BGPPEER_API_VERSION}`,
  }),
  kind: z.literal(BGPPEER_KIND, { error: `expected kind ${BGPPEER_KIND}` }),
  metadata: clusterMetaSchema(BGPPEER_KIND, 'dns1123Subdomain'),
  spec: bgpPeerSpecSchema.superRefine((spec, ctx) => {
    if (
      spec.keepaliveTime !== undefined &&
      spec.holdTime !== 0 &&
      spec.keepaliveTime >= spec.holdTime
    )
      ctx.addIssue({
        code: 'custom',
        path: ['keepaliveTime'],
        message: `keepaliveTime ${spec.keepaliveTime} s must be below holdTime ${spec.holdTime} s (a third of it is usual)`,
      });
  }),
});

export type BGPPeer = z.output<typeof bgpPeerSchema>;
export type BGPPeerSpec = z.output<typeof bgpPeerSpecSchema>;

/** Validates and defaults a BGPPeer object; throws InvalidResourceError naming each bad field. */
export function parseBGPPeer(obj: unknown): BGPPeer {
  return parseOrThrow(bgpPeerSchema, BGPPEER_KIND, obj);
}
