// Pure: the text of one manifest file -> the objects it defines, or the
// problems that stop it from being used. No file system here, so every case
// is a table-driven test.
import { LineCounter, parseAllDocuments } from 'yaml';

import { InvalidResourceError, UnknownKindError } from '../resources/errors.js';
import { objectKey, type ResourceKind, type ResourceTypes } from '../resources/kinds.js';
import { validateResource } from '../resources/validate.js';
import { secretStoreKey, type SecretValues } from '../store/secrets.js';

import { isSecretManifest, parseSecretManifest } from './secret-manifest.js';

export type ProblemCode =
  /** The file is not YAML. The file changes nothing. */
  | 'invalidYaml'
  /** A document is not a valid object of its kind. The file changes nothing. */
  | 'invalidObject'
  /** The file cannot be read. The file changes nothing. */
  | 'unreadable'
  /** A document of a kind xlb does not read: skipped, the rest of the file is used. */
  | 'unknownKind'
  /** An object another file (or an earlier document) already defines: this one is ignored. */
  | 'duplicate'
  /** A Secret outside the agent's namespace: skipped (xlb reads Secrets only there), the rest of the file is used. */
  | 'foreignSecret';

export interface ManifestProblem {
  /** The file's name in the directory (the directory itself when it cannot be read). */
  file: string;
  /** 0-based index of the YAML document in the file; undefined for the file as a whole. */
  document: number | undefined;
  /** 1-based line of the document or of the YAML error. */
  line: number | undefined;
  code: ProblemCode;
  reason: string;
}

/** Problems that keep the file's new content out: its last valid objects stay. */
export function rejectsFile(p: ManifestProblem): boolean {
  return p.code === 'invalidYaml' || p.code === 'invalidObject' || p.code === 'unreadable';
}

export type ManifestObject =
  | {
      [K in ResourceKind]: {
        kind: K;
        key: string;
        object: ResourceTypes[K];
        file: string;
        document: number;
      };
    }[ResourceKind]
  | {
      kind: 'Secret';
      key: string;
      /** Every value: merge keeps only those a BGPPeer references. */
      object: SecretValues;
      file: string;
      document: number;
    };

export interface ManifestOptions {
  /**
   * The agent's own namespace: Secrets without a namespace are in it, and
   * Secrets elsewhere are skipped. Default DEFAULT_SECRET_NAMESPACE.
   */
  secretNamespace?: string;
}

/** The agent's namespace when nothing says otherwise (the agent's own default). */
export const DEFAULT_SECRET_NAMESPACE = 'xlb-system';

export interface ParsedManifests {
  objects: ManifestObject[];
  problems: ManifestProblem[];
  /** False when a problem rejects the file: use none of `objects`. */
  usable: boolean;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// "kind: List" is what `kubectl get -o yaml` prints for several objects; the
// typed lists (ServiceList, ...) are what the API itself returns.
function isList(doc: Record<string, unknown>): boolean {
  return (
    (doc.kind === 'List' && doc.apiVersion === 'v1') ||
    (typeof doc.kind === 'string' &&
      /^(Service|EndpointSlice|Node|IPPool|BGPPeer|BGPAdvertisement|Secret)List$/.test(doc.kind))
  );
}

export function parseManifests(
  fileName: string,
  text: string,
  options: ManifestOptions = {},
): ParsedManifests {
  const secretNamespace = options.secretNamespace ?? DEFAULT_SECRET_NAMESPACE;
  const objects: ManifestObject[] = [];
  const problems: ManifestProblem[] = [];
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: true });
  for (const [index, doc] of docs.entries()) {
    const problem = (code: ProblemCode, reason: string, line?: number): void => {
      const start = doc.contents?.range[0] ?? doc.range[0];
      problems.push({
        file: fileName,
        document: index,
        line: line ?? lines.linePos(start).line,
        code,
        reason,
      });
    };
    if (doc.errors.length > 0) {
      for (const err of doc.errors)
        problem(
          'invalidYaml',
          err.message.split('\n')[0]!.replace(/:$/, ''),
          err.linePos?.[0].line,
        );
      continue;
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue; // an empty document, e.g. after a trailing ---
    if (!isMap(value)) {
      problem('invalidObject', 'a document must be a map with apiVersion, kind and metadata');
      continue;
    }
    let items: { value: unknown; path: [] | ['items', number] }[];
    if (isList(value)) {
      if (!Array.isArray(value.items)) {
        problem('invalidObject', `items: a ${String(value.kind)} needs items (a list)`);
        continue;
      }
      items = (value.items as unknown[]).map((item, i) => ({ value: item, path: ['items', i] }));
    } else {
      items = [{ value, path: [] }];
    }
    for (const item of items) {
      const where = item.path.length > 0 ? `items[${item.path[1]}]: ` : '';
      if (!isMap(item.value) || typeof item.value.kind !== 'string' || item.value.kind === '') {
        problem('invalidObject', `${where}an object needs a kind (a string)`);
        continue;
      }
      if (typeof item.value.apiVersion !== 'string' || item.value.apiVersion === '') {
        problem('invalidObject', `${where}an object needs an apiVersion (a string)`);
        continue;
      }
      try {
        if (isSecretManifest(item.value)) {
          const secret = parseSecretManifest(item.value, secretNamespace, item.path);
          const { namespace, name } = secret.metadata;
          if (namespace !== secretNamespace) {
            problem(
              'foreignSecret',
              `${where}Secret ${namespace}/${name} skipped: xlb reads Secrets only ` +
                `in its own namespace '${secretNamespace}' (leave metadata.namespace out, or set it to that)`,
            );
            continue;
          }
          objects.push({
            kind: 'Secret',
            key: secretStoreKey(namespace, name),
            object: secret,
            file: fileName,
            document: index,
          });
          continue;
        }
        const valid = validateResource(item.value, item.path);
        objects.push({
          ...valid,
          key: objectKey(valid.kind, valid.object as never),
          file: fileName,
          document: index,
        });
      } catch (err) {
        if (err instanceof UnknownKindError) problem('unknownKind', `${where}${err.message}`);
        else if (err instanceof InvalidResourceError) problem('invalidObject', err.message);
        else throw err;
      }
    }
  }
  return { objects, problems, usable: !problems.some(rejectsFile) };
}
