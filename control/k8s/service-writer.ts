// The Service writes xlb makes, each a merge patch conditioned on the
// resourceVersion it was computed from (a stale one gets 409 Conflict): the
// finalizer list on the object, and ingress plus conditions on /status.
import { CoreV1Api, type KubeConfig, type V1Service } from '@kubernetes/client-node';

import { callOptions, classifyFailure, MERGE_PATCH } from './api-call.js';
import type { StatusWrite } from './service-status.js';

export type ServiceWrite =
  { kind: 'finalizers'; finalizers: string[] } | { kind: 'status'; status: StatusWrite };

/** Namespace and name of a Service; a Service without them is never written. */
export function serviceRef(svc: V1Service): { namespace: string; name: string } {
  const namespace = svc.metadata?.namespace;
  const name = svc.metadata?.name;
  if (namespace === undefined || name === undefined || namespace === '' || name === '')
    throw new Error('a Service without metadata.namespace and metadata.name cannot be written');
  return { namespace, name };
}

export class ServiceWriter {
  private readonly core: CoreV1Api;

  constructor(
    kubeConfig: KubeConfig,
    private readonly timeoutMs: number,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  /** The Service as the API server has it now; undefined when it is gone. */
  async read(namespace: string, name: string, signal: AbortSignal): Promise<V1Service | undefined> {
    try {
      return await this.core.readNamespacedService(
        { namespace, name },
        callOptions({ signal, timeoutMs: this.timeoutMs }),
      );
    } catch (e) {
      if (classifyFailure(e, signal).kind === 'gone') return undefined;
      throw e;
    }
  }

  write(svc: V1Service, w: ServiceWrite, signal: AbortSignal): Promise<V1Service> {
    const { namespace, name } = serviceRef(svc);
    const resourceVersion = svc.metadata?.resourceVersion;
    if (resourceVersion === undefined || resourceVersion === '')
      throw new Error(`Service ${namespace}/${name} has no resourceVersion to write against`);
    const options = callOptions({ signal, timeoutMs: this.timeoutMs, contentType: MERGE_PATCH });
    if (w.kind === 'finalizers') {
      return this.core.patchNamespacedService(
        { namespace, name, body: { metadata: { resourceVersion, finalizers: w.finalizers } } },
        options,
      );
    }
    // Merge patches replace lists whole; null removes a field left empty.
    const body = {
      metadata: { resourceVersion },
      status: {
        loadBalancer: { ingress: w.status.ingress.length > 0 ? w.status.ingress : null },
        conditions: w.status.conditions.length > 0 ? w.status.conditions : null,
      },
    };
    return this.core.patchNamespacedServiceStatus({ namespace, name, body }, options);
  }
}
