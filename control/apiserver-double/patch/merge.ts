// JSON merge patch (RFC 7386): objects merge key by key, null deletes, and
// everything else (lists included) replaces.
import { clone, isObj } from '../json.js';

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  const out = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
