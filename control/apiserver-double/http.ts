// HTTP plumbing: reading bodies, writing JSON and Status responses.
import type { IncomingMessage, ServerResponse } from 'node:http';

import { parse as parseYaml } from 'yaml';

import { ApiError, badRequest, unsupportedMediaType } from './errors.js';
import type { RequestRecord } from './faults.js';
import { decodeProtobuf } from './protobuf.js';

const MAX_BODY = 3 * 1024 * 1024;

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY)
      throw new ApiError(
        413,
        'RequestEntityTooLarge',
        'Request entity too large: limit is 3145728',
      );
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The request body as JSON (or YAML, which the API server also decodes); undefined when empty. */
export function parseBody(body: Buffer, contentType: string | undefined): unknown {
  if (body.length === 0) return undefined;
  const type = (contentType ?? 'application/json').split(';')[0]?.trim() ?? '';
  if (type === 'application/vnd.kubernetes.protobuf') return decodeProtobuf(body);
  if (
    type !== 'application/json' &&
    type !== 'application/yaml' &&
    !type.endsWith('+json') &&
    !type.endsWith('+yaml')
  ) {
    throw unsupportedMediaType(type);
  }
  const text = body.toString('utf8');
  try {
    if (type === 'application/yaml' || type === 'application/apply-patch+yaml')
      return parseYaml(text) as unknown;
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw badRequest(`couldn't decode the request body: ${(e as Error).message}`);
  }
}

export function send(
  res: ServerResponse,
  record: RequestRecord,
  code: number,
  body: unknown,
  contentType = 'application/json',
  warnings: string[] = [],
): void {
  record.code = code;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string | string[]> = {
    'Content-Type': contentType,
    'Content-Length': String(Buffer.byteLength(text)),
    'Cache-Control': 'no-cache, private',
  };
  if (warnings.length > 0) headers.Warning = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
  res.writeHead(code, headers);
  res.end(text);
}

export function sendError(res: ServerResponse, record: RequestRecord, err: ApiError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err.details.retryAfterSeconds !== undefined)
    res.setHeader('Retry-After', String(err.details.retryAfterSeconds));
  send(res, record, err.code, err.status());
}
