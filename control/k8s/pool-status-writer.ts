// IPPool status (usage per family, Ready / Overlap / Invalid conditions),
// written through the status subresource when it differs from what the pool
// shows, conditioned on the resourceVersion it was computed from.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';

import { toIPPoolStatus, type IPPoolStatusObject, type PoolStatus } from '../ipam/index.js';
import { asRecord } from '../model/guards.js';
import { sameContent } from '../store/equal.js';
import { callOptions, classifyFailure, MERGE_PATCH } from './api-call.js';

const GROUP = 'xlb.dev';
const VERSION = 'v1alpha1';
const PLURAL = 'ippools';

/** An IPPool object as read: only metadata and status matter here. */
export interface PoolObject {
  metadata?: { name?: string; resourceVersion?: string; generation?: number };
  status?: unknown;
  [field: string]: unknown;
}

/** The status `pool` should show for `status`; undefined when it shows it already. */
export function poolStatusWrite(
  pool: PoolObject,
  status: PoolStatus,
  now: Date,
): IPPoolStatusObject | undefined {
  const generation = pool.metadata?.generation;
  const want = toIPPoolStatus(
    status,
    now,
    pool.status,
    typeof generation === 'number' ? generation : undefined,
  );
  // A plain copy: the current status may hold class instances or undefined fields.
  const have = asRecord(pool.status);
  return have !== undefined && sameContent(JSON.parse(JSON.stringify(have)), want)
    ? undefined
    : want;
}

export class PoolStatusWriter {
  private readonly api: CustomObjectsApi;

  constructor(
    kubeConfig: KubeConfig,
    private readonly timeoutMs: number,
  ) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  async read(name: string, signal: AbortSignal): Promise<PoolObject | undefined> {
    try {
      return (await this.api.getClusterCustomObject(
        { group: GROUP, version: VERSION, plural: PLURAL, name },
        callOptions({ signal, timeoutMs: this.timeoutMs }),
      )) as PoolObject;
    } catch (e) {
      if (classifyFailure(e, signal).kind === 'gone') return undefined;
      throw e;
    }
  }

  async write(
    pool: PoolObject,
    status: IPPoolStatusObject,
    signal: AbortSignal,
  ): Promise<PoolObject> {
    const name = pool.metadata?.name ?? '';
    const resourceVersion = pool.metadata?.resourceVersion;
    if (name === '' || resourceVersion === undefined)
      throw new Error(`IPPool '${name}' has no name or resourceVersion to write against`);
    return (await this.api.patchClusterCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        name,
        // Usage of a family the pool no longer has is removed (null), not left behind.
        body: {
          metadata: { resourceVersion },
          status: { ipv4: null, ipv6: null, ...status },
        },
      },
      callOptions({ signal, timeoutMs: this.timeoutMs, contentType: MERGE_PATCH }),
    )) as PoolObject;
  }
}
