// JSON patch (RFC 6902) with JSON pointers (RFC 6901). Failures are 422 like
// the API server's (it maps evanphx/json-patch errors to Unprocessable).
import { ApiError, badRequest } from '../errors.js';
import { clone, deepEqual, isObj } from '../json.js';

function fail(message: string): ApiError {
  return new ApiError(422, 'Invalid', message);
}

function parsePointer(p: unknown): string[] {
  if (typeof p !== 'string') throw badRequest('json patch: path must be a string');
  if (p === '') return [];
  if (!p.startsWith('/')) throw fail(`invalid JSON pointer: ${p}`);
  return p
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The container holding the last token, and that token. */
function parent(doc: unknown, tokens: string[], op: string): [unknown, string] {
  let cur = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObj(cur)) cur = cur[t];
    else cur = undefined;
    if (cur === undefined)
      throw fail(
        `${op} operation does not apply: doc is missing path: /${tokens.join('/')}: missing value`,
      );
  }
  return [cur, tokens[tokens.length - 1] ?? ''];
}

function arrayIndex(arr: unknown[], t: string, allowEnd: boolean): number {
  if (t === '-' && allowEnd) return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(t)) throw fail(`invalid array index: ${t}`);
  const i = Number(t);
  if (i > arr.length || (!allowEnd && i === arr.length))
    throw fail('Unable to access invalid index: ' + t);
  return i;
}

function read(doc: unknown, tokens: string[], op: string): unknown {
  if (tokens.length === 0) return doc;
  const [c, t] = parent(doc, tokens, op);
  if (Array.isArray(c)) return c[arrayIndex(c, t, false)];
  if (isObj(c) && Object.hasOwn(c, t)) return c[t];
  throw fail(
    `${op} operation does not apply: doc is missing path: /${tokens.join('/')}: missing value`,
  );
}

function remove(doc: unknown, tokens: string[], op: string): unknown {
  const [c, t] = parent(doc, tokens, op);
  if (Array.isArray(c)) return c.splice(arrayIndex(c, t, false), 1)[0];
  if (isObj(c) && Object.hasOwn(c, t)) {
    const v = c[t];
    delete c[t];
    return v;
  }
  throw fail(
    `${op} operation does not apply: doc is missing path: /${tokens.join('/')}: missing value`,
  );
}

function add(doc: unknown, tokens: string[], value: unknown, replace: boolean): unknown {
  if (tokens.length === 0) return clone(value);
  const [c, t] = parent(doc, tokens, replace ? 'replace' : 'add');
  if (Array.isArray(c)) {
    const i = arrayIndex(c, t, !replace);
    c.splice(i, replace ? 1 : 0, clone(value));
  } else if (isObj(c)) {
    if (replace && !Object.hasOwn(c, t)) {
      throw fail(
        `replace operation does not apply: doc is missing key: /${tokens.join('/')}: missing value`,
      );
    }
    c[t] = clone(value);
  } else throw fail(`add operation does not apply: doc is missing path: /${tokens.join('/')}`);
  return doc;
}

export function jsonPatch(target: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw badRequest('json patch must be a JSON array of operations');
  let doc = clone(target);
  for (const raw of patch) {
    if (!isObj(raw)) throw badRequest('json patch operation must be an object');
    const path = parsePointer(raw.path);
    switch (raw.op) {
      case 'add':
        doc = add(doc, path, raw.value, false);
        break;
      case 'replace':
        doc = add(doc, path, raw.value, true);
        break;
      case 'remove':
        if (path.length === 0) doc = null;
        else remove(doc, path, 'remove');
        break;
      case 'move': {
        const from = parsePointer(raw.from);
        const v = remove(doc, from, 'move');
        doc = add(doc, path, v, false);
        break;
      }
      case 'copy':
        doc = add(doc, path, read(doc, parsePointer(raw.from), 'copy'), false);
        break;
      case 'test':
        if (!deepEqual(read(doc, path, 'test'), raw.value)) {
          throw fail(`testing value /${path.join('/')} failed: test failed`);
        }
        break;
      default:
        throw badRequest(`Unexpected kind: ${String(raw.op)}`);
    }
  }
  return doc;
}
