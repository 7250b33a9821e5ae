// Pure: the objects every file contributes -> one snapshot for the store.
// An object defined twice is kept from the first file in name order (and
// the first document within a file), so the outcome never depends on the
// order the file system lists or the watcher reports files.
import { RESOURCE_KINDS } from '../resources/kinds.js';
import type { StoreSnapshot } from '../store/cluster-store.js';
import { keepWanted, wantedSecretKeys, type SecretValues } from '../store/secrets.js';

import {
  DEFAULT_SECRET_NAMESPACE,
  type ManifestObject,
  type ManifestProblem,
} from './manifests.js';

export interface FileContribution {
  file: string;
  objects: readonly ManifestObject[];
}

/**
 * Secrets come out with only the values the snapshot's BGPPeers reference
 * (in `secretNamespace`, the agent's own), as from the Kubernetes source.
 */
export function mergeContributions(
  files: readonly FileContribution[],
  secretNamespace = DEFAULT_SECRET_NAMESPACE,
): {
  snapshot: Required<StoreSnapshot>;
  problems: ManifestProblem[];
} {
  const snapshot: Required<StoreSnapshot> = {
    Service: [],
    EndpointSlice: [],
    Node: [],
    IPPool: [],
    BGPPeer: [],
    BGPAdvertisement: [],
    Secret: [],
  };
  const secrets: SecretValues[] = [];
  const problems: ManifestProblem[] = [];
  const winners = new Map<string, ManifestObject>();
  const ordered = [...files].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  for (const { objects } of ordered) {
    for (const o of objects) {
      const id = `${o.kind} ${o.key}`;
      const first = winners.get(id);
      if (first !== undefined) {
        problems.push({
          file: o.file,
          document: o.document,
          line: undefined,
          code: 'duplicate',
          reason:
            `${o.kind} '${o.key}' is already defined in ${first.file} ` +
            `(document ${first.document}); this definition is ignored`,
        });
        continue;
      }
      winners.set(id, o);
      if (o.kind === 'Secret') secrets.push(o.object);
      else (snapshot[o.kind] as unknown[]).push(o.object);
    }
  }
  const wanted = wantedSecretKeys(snapshot.BGPPeer, secretNamespace);
  snapshot.Secret = secrets.map((s) => keepWanted(s, wanted));
  return { snapshot, problems };
}

export function countObjects(snapshot: Required<StoreSnapshot>): number {
  return RESOURCE_KINDS.reduce((n, k) => n + snapshot[k].length, snapshot.Secret.length);
}
