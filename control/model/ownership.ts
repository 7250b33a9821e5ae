// Whether a Service is ours to serve. Only type LoadBalancer; then
// spec.loadBalancerClass decides, as Kubernetes intends: a class names exactly
// one implementation, and no class means "the default one", which xlb is only
// when configured to be.
import type { V1Service } from '@kubernetes/client-node';

import { asRecord, asString, objectKey } from './guards.js';
import type { ModelOptions, Ownership } from './types.js';

export function classifyService(service: V1Service, options: ModelOptions): Ownership {
  const svc = asRecord(service);
  const spec = asRecord(svc?.['spec']);
  if (svc === undefined || objectKey(svc['metadata']).name === undefined) {
    return notOurs('malformedService', 'the Service has no metadata.name');
  }
  if (spec === undefined) return notOurs('malformedService', 'the Service has no spec');
  const type = asString(spec['type']) ?? 'ClusterIP';
  if (type !== 'LoadBalancer') {
    return notOurs('notLoadBalancer', `type is ${type}, not LoadBalancer`);
  }
  const cls = asString(spec['loadBalancerClass']);
  if (cls === undefined || cls === '') {
    return options.defaultClass
      ? { owned: true }
      : notOurs(
          'noClassNotDefault',
          `no loadBalancerClass, and xlb is not the default implementation (its class is ${options.loadBalancerClass})`,
        );
  }
  if (cls !== options.loadBalancerClass) {
    return notOurs('otherClass', `loadBalancerClass ${cls} belongs to another implementation`);
  }
  return { owned: true };
}

function notOurs(
  reason: Extract<Ownership, { owned: false }>['reason'],
  message: string,
): Ownership {
  return { owned: false, reason, message };
}
