// One entry point that recognises a manifest object by apiVersion and kind
// and validates it with that kind's schema.
import type { z } from 'zod';

import { bgpAdvertisementSchema } from './bgp-advertisement.js';
import { bgpPeerSchema } from './bgp-peer.js';
import { endpointSliceSchema } from './endpoint-slice.js';
import { fieldIssues, InvalidResourceError, nameOf, UnknownKindError } from './errors.js';
import { ipPoolSchema } from './ip-pool.js';
import { KIND_INFO, RESOURCE_KINDS, type ResourceKind, type ResourceTypes } from './kinds.js';
import { nodeSchema } from './node.js';
import { serviceSchema } from './service.js';

// Typed per kind: the compiler checks that each schema's output is the
// client library's type for that kind.
const SCHEMAS: { [K in ResourceKind]: z.ZodType<ResourceTypes[K], unknown> } = {
  Service: serviceSchema,
  EndpointSlice: endpointSliceSchema,
  Node: nodeSchema,
  IPPool: ipPoolSchema,
  BGPPeer: bgpPeerSchema,
  BGPAdvertisement: bgpAdvertisementSchema,
};

export type ValidResource = {
  [K in ResourceKind]: { kind: K; object: ResourceTypes[K] };
}[ResourceKind];

/** Which of our kinds `obj` claims to be, by apiVersion and kind; undefined if none. */
export function kindOf(obj: unknown): ResourceKind | undefined {
  if (typeof obj !== 'object' || obj === null) return undefined;
  const { apiVersion, kind } = obj as { apiVersion?: unknown; kind?: unknown };
  return RESOURCE_KINDS.find((k) => k === kind && KIND_INFO[k].apiVersion === apiVersion);
}

function unknownKind(obj: unknown): UnknownKindError {
  const { apiVersion, kind } = (typeof obj === 'object' && obj !== null ? obj : {}) as {
    apiVersion?: unknown;
    kind?: unknown;
  };
  const same = RESOURCE_KINDS.find((k) => k === kind);
  const message =
    same !== undefined
      ? `xlb reads ${same} as apiVersion ${KIND_INFO[same].apiVersion}, not ${JSON.stringify(apiVersion)}`
      : `xlb does not read ${JSON.stringify(apiVersion)} ${JSON.stringify(kind)} objects; it reads ` +
        RESOURCE_KINDS.map((k) => `${KIND_INFO[k].apiVersion} ${k}`).join(', ');
  return new UnknownKindError(apiVersion, kind, message);
}

/**
 * Validates and defaults `obj`. Throws UnknownKindError for objects that are
 * none of our kinds and InvalidResourceError (with field paths) for invalid ones.
 * `pathPrefix` places the issues inside a larger document (e.g. `items[3]`).
 */
export function validateResource(
  obj: unknown,
  pathPrefix: readonly PropertyKey[] = [],
): ValidResource {
  const kind = kindOf(obj);
  if (kind === undefined) throw unknownKind(obj);
  const r = SCHEMAS[kind].safeParse(obj);
  if (!r.success)
    throw new InvalidResourceError(kind, nameOf(obj), fieldIssues(r.error, pathPrefix));
  // TypeScript cannot correlate `kind` with SCHEMAS[kind]'s output in a union.
  return { kind, object: r.data } as ValidResource;
}
