// BGP MD5 passwords from the Secrets in the store, for the speaker. The agent
// reads Secrets in its own namespace only (a namespaced Role, not a
// ClusterRole: xlb cannot read anyone else's Secrets), so a reference to
// another namespace is refused with that reason rather than looked for in
// vain. Messages name Secrets and keys, never a value.
import { SecretLookupError, type SecretLookup } from '../bgp/config.js';

import type { StoredSecret } from './secrets.js';

/** Where the Secrets are: a ClusterStore, or anything else holding them. */
export interface SecretSource {
  secret(namespace: string, name: string): StoredSecret | undefined;
}

/**
 * A lookup over `source` for an agent whose own namespace is `namespace`.
 * Throws SecretLookupError saying why a password cannot be had.
 */
export function storeSecretLookup(source: SecretSource, namespace: string): SecretLookup {
  return (ref) => {
    if (ref.namespace !== undefined && ref.namespace !== namespace) {
      throw new SecretLookupError(
        `Secret ${ref.namespace}/${ref.name} is in namespace '${ref.namespace}', but the agent ` +
          `reads Secrets only in its own namespace '${namespace}' (least privilege); create the ` +
          `Secret in '${namespace}' and leave passwordSecretRef.namespace out`,
      );
    }
    const where = `${namespace}/${ref.name}`;
    const secret = source.secret(namespace, ref.name);
    if (secret === undefined)
      throw new SecretLookupError(`Secret ${where} does not exist (or is not read yet)`);
    const value = secret.data[ref.key];
    if (value !== undefined && value !== '') return value;
    if (value === '') throw new SecretLookupError(`key '${ref.key}' of Secret ${where} is empty`);
    const has = secret.keys.length === 0 ? 'no keys' : `keys ${secret.keys.join(', ')}`;
    throw new SecretLookupError(
      secret.keys.includes(ref.key)
        ? `key '${ref.key}' of Secret ${where} is not read yet`
        : `Secret ${where} has no key '${ref.key}' (it has ${has})`,
    );
  };
}
