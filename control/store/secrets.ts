// What xlb keeps of a Secret: the least it can. The only Secrets xlb reads
// hold BGP MD5 passwords, so of each Secret in the agent's own namespace the
// store keeps the names of its keys (to say what a wrong key reference could
// have meant) and the values of only the keys a BGPPeer's passwordSecretRef
// names; everything else (other values, annotations, managedFields with
// their copies) is dropped where it comes in, so it cannot reach a log line,
// a dump or a heap snapshot by way of the store.

/** A Secret as the store holds it. */
export interface StoredSecret {
  readonly metadata: { readonly namespace: string; readonly name: string };
  /** Every key the Secret has, sorted: names only. */
  readonly keys: readonly string[];
  /** Decoded (UTF-8) values of the keys a BGPPeer references; no other. */
  readonly data: Readonly<Record<string, string>>;
}

/** A Secret as read, before stripping: every key with its decoded value. */
export interface SecretValues {
  metadata: { namespace: string; name: string };
  values: Readonly<Record<string, string>>;
}

/** Secret name -> the keys BGPPeers reference in it (all in one namespace). */
export type WantedSecretKeys = ReadonlyMap<string, ReadonlySet<string>>;

/** The key (passwordSecretRef.key) a reference without one means, as the BGPPeer schema defaults it. */
export const DEFAULT_SECRET_KEY = 'password';

export function secretStoreKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The keys the peers' passwordSecretRefs name in `namespace` (a reference
 * without a namespace means it). Read leniently from objects as stored, not
 * validated: a peer the speaker later rejects for another field still keeps
 * its password loaded, so fixing that field needs no second read.
 */
export function wantedSecretKeys(peers: readonly unknown[], namespace: string): WantedSecretKeys {
  const wanted = new Map<string, Set<string>>();
  for (const peer of peers) {
    const ref = record(record(record(peer)?.spec)?.passwordSecretRef);
    const name = nonEmpty(ref?.name);
    if (ref === undefined || name === undefined) continue;
    if ((nonEmpty(ref.namespace) ?? namespace) !== namespace) continue;
    const key = nonEmpty(ref.key) ?? DEFAULT_SECRET_KEY;
    let keys = wanted.get(name);
    if (keys === undefined) wanted.set(name, (keys = new Set()));
    keys.add(key);
  }
  return wanted;
}

/** Whether `after` wants a key `before` did not (a Secret must then be read again). */
export function wantsMore(before: WantedSecretKeys, after: WantedSecretKeys): boolean {
  for (const [name, keys] of after) {
    const had = before.get(name);
    for (const key of keys) if (had?.has(key) !== true) return true;
  }
  return false;
}

/** `secret` with only the wanted keys' values. */
export function keepWanted(secret: SecretValues, wanted: WantedSecretKeys): StoredSecret {
  const { namespace, name } = secret.metadata;
  const keys = wanted.get(name);
  const data: Record<string, string> = {};
  if (keys !== undefined)
    for (const key of [...keys].sort())
      if (Object.hasOwn(secret.values, key)) data[key] = secret.values[key]!;
  return {
    metadata: { namespace, name },
    keys: Object.keys(secret.values).sort(),
    data,
  };
}

/** A stored Secret narrowed to what `wanted` still names (a peer stopped referencing a key). */
export function narrowStored(secret: StoredSecret, wanted: WantedSecretKeys): StoredSecret {
  const keys = wanted.get(secret.metadata.name);
  const data: Record<string, string> = {};
  for (const [key, value] of Object.entries(secret.data))
    if (keys?.has(key) === true) data[key] = value;
  return { ...secret, data };
}

/**
 * A v1 Secret as the API server sends it (data base64, stringData never
 * returned) -> its values; undefined without a name or namespace. The
 * server validated the base64, so no value is refused here.
 */
export function secretFromApi(obj: unknown): SecretValues | undefined {
  const o = record(obj);
  const metadata = record(o?.metadata);
  const name = nonEmpty(metadata?.name);
  const namespace = nonEmpty(metadata?.namespace);
  if (name === undefined || namespace === undefined) return undefined;
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(record(o?.data) ?? {}))
    if (typeof value === 'string') values[key] = Buffer.from(value, 'base64').toString('utf8');
  return { metadata: { namespace, name }, values };
}
