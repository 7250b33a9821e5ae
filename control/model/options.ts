import type { ModelOptions } from './types.js';

export const DEFAULT_LOAD_BALANCER_CLASS = 'xlb.dev/xlb';

// Not the default class unless asked: another implementation (a cloud
// controller, MetalLB, Cilium) may already serve class-less Services, and two
// implementations fighting over one Service is worse than neither.
export const defaultOptions: Readonly<ModelOptions> = {
  loadBalancerClass: DEFAULT_LOAD_BALANCER_CLASS,
  defaultClass: false,
};

export function resolveOptions(options?: Partial<ModelOptions>): ModelOptions {
  return { ...defaultOptions, ...options };
}
