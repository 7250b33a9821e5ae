// Service helpers shared by its defaulting, validation and allocation.
import { asArray, child, isObj, type Obj } from '../json.js';
import type { KubeObject } from '../types.js';

export function spec(o: KubeObject): Obj {
  return child(o, 'spec');
}

export function ports(s: Obj): Obj[] {
  return asArray(s.ports).filter(isObj);
}

/** NodePort and LoadBalancer (unless allocateLoadBalancerNodePorts is false) get node ports. */
export function needsNodePorts(s: Obj): boolean {
  return (
    s.type === 'NodePort' ||
    (s.type === 'LoadBalancer' && s.allocateLoadBalancerNodePorts !== false)
  );
}

/** Reachable from outside the cluster: NodePort and LoadBalancer. */
export function external(s: Obj): boolean {
  return s.type === 'NodePort' || s.type === 'LoadBalancer';
}
