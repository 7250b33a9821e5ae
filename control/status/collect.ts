// `xlb status` gathers two views: the pinned datapath (always, when this node
// has one) and the agent's own (when its /status answers). Either may be
// missing; the report says which and why.
import { z } from 'zod';

import { PinnedDatapath, PinnedDatapathError } from '../explain/pinned.js';
import type { AgentStatus } from './agent-status.js';
import { readDatapathStatus, type DatapathStatus } from './datapath-status.js';

export interface Status {
  datapath?: DatapathStatus;
  /** Why there is no datapath view. */
  datapathError?: string;
  agentUrl?: string;
  agent?: AgentStatus;
  /** Why there is no agent view. */
  agentError?: string;
}

// Only what rendering relies on is checked; the rest passes as the agent sent it.
const agentSchema = z
  .object({
    node: z.string(),
    mode: z.enum(['kubernetes', 'standalone']),
    ready: z.boolean(),
    notReadyReason: z.string().optional(),
    leader: z.boolean().nullable(),
    services: z.array(
      z
        .object({ service: z.string(), unit: z.string(), frontends: z.array(z.string()) })
        .passthrough(),
    ),
    announcements: z.array(z.object({}).passthrough()),
    decisions: z.array(
      z
        .object({
          service: z.string(),
          reason: z.string(),
          severity: z.string(),
          message: z.string(),
        })
        .passthrough(),
    ),
    nodeDecisions: z.array(z.object({}).passthrough()),
    bgpSessions: z.array(
      z
        .object({ peer: z.string(), peerAsn: z.number(), localAsn: z.number(), state: z.string() })
        .passthrough(),
    ),
  })
  .passthrough();

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** The agent's /status, or why it could not be had. */
export async function fetchAgentStatus(
  url: string,
  timeoutMs = 2000,
): Promise<{ agent: AgentStatus } | { error: string }> {
  const target = `${url.replace(/\/+$/, '')}/status`;
  let res: Response;
  try {
    res = await fetch(target, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    const cause = (e as { cause?: unknown }).cause;
    return { error: `no agent answers at ${target}: ${errorText(cause ?? e)}` };
  }
  if (!res.ok) {
    return { error: `the agent at ${target} answered ${res.status}: ${(await res.text()).trim()}` };
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch (e) {
    return { error: `the agent at ${target} sent something that is not JSON: ${errorText(e)}` };
  }
  const parsed = agentSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      error: `the agent at ${target} sent a status this xlb cannot read (${issue?.path.join('.') ?? ''}: ${issue?.message ?? ''})`,
    };
  }
  return { agent: parsed.data as unknown as AgentStatus };
}

export function readPinnedStatus(pinDir: string): { datapath: DatapathStatus } | { error: string } {
  try {
    using dp = PinnedDatapath.open(pinDir);
    return { datapath: readDatapathStatus(dp) };
  } catch (e) {
    if (e instanceof PinnedDatapathError) return { error: e.message };
    throw e;
  }
}

export async function collectStatus(options: {
  pinDir: string;
  /** undefined: the agent is not asked. */
  agentUrl?: string;
  timeoutMs?: number;
}): Promise<Status> {
  const out: Status = {};
  const d = readPinnedStatus(options.pinDir);
  if ('datapath' in d) out.datapath = d.datapath;
  else out.datapathError = d.error;
  if (options.agentUrl !== undefined) {
    out.agentUrl = options.agentUrl;
    const a = await fetchAgentStatus(options.agentUrl, options.timeoutMs);
    if ('agent' in a) out.agent = a.agent;
    else out.agentError = a.error;
  }
  return out;
}
