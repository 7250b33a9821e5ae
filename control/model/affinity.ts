// sessionAffinity ClientIP: the timeout the datapath keeps a client on its
// backend. Bounds and default are Kubernetes' own (as kube-proxy applies them).
import type { V1ServiceSpec } from '@kubernetes/client-node';

import { asRecord, asString } from './guards.js';
import type { Finding } from './reasons.js';

export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;
export const MAX_AFFINITY_TIMEOUT_SECONDS = 86400;

export interface Affinity {
  /** Absent: no affinity. */
  timeoutSeconds?: number;
  findings: Finding[];
}

export function sessionAffinity(spec: V1ServiceSpec): Affinity {
  const s = asRecord(spec);
  const mode = asString(s?.['sessionAffinity']) ?? 'None';
  if (mode === 'None' || mode === '') return { findings: [] };
  if (mode !== 'ClientIP') {
    return {
      findings: [
        {
          reason: 'unsupportedSessionAffinity',
          message: `sessionAffinity ${mode} is not supported; balancing without affinity`,
        },
      ],
    };
  }
  const timeout = asRecord(asRecord(s?.['sessionAffinityConfig'])?.['clientIP'])?.[
    'timeoutSeconds'
  ];
  if (timeout === undefined || timeout === null) {
    return { timeoutSeconds: DEFAULT_AFFINITY_TIMEOUT_SECONDS, findings: [] };
  }
  if (
    typeof timeout !== 'number' ||
    !Number.isInteger(timeout) ||
    timeout < 1 ||
    timeout > MAX_AFFINITY_TIMEOUT_SECONDS
  ) {
    return {
      timeoutSeconds: DEFAULT_AFFINITY_TIMEOUT_SECONDS,
      findings: [
        {
          reason: 'invalidAffinityTimeout',
          message: `sessionAffinityConfig.clientIP.timeoutSeconds ${JSON.stringify(timeout)} is not an integer in 1..${MAX_AFFINITY_TIMEOUT_SECONDS}; using ${DEFAULT_AFFINITY_TIMEOUT_SECONDS}`,
        },
      ],
    };
  }
  return { timeoutSeconds: timeout, findings: [] };
}
