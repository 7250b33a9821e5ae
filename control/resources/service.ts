// The parts of a v1 Service that xlb's pipeline reads, validated with the
// apiserver's rules and defaults, so the model sees the same shape from a
// YAML file as from a cluster. Fields not listed pass through untouched.
import { z } from 'zod';

import { booleanSchema, cidrSchema, ipSchema, portNumberSchema, protocolSchema } from './common.js';
import { isDns1123Label, namespacedMetaSchema } from './meta.js';

// IANA service names, which a targetPort may use to name a container port.
const ianaSvcName = /^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?=[a-z0-9]))*$/;

const servicePortSchema = z
  .looseObject({
    name: z
      .string({ error: 'a port name is a string' })
      .refine(isDns1123Label, {
        error: (iss) =>
          `${JSON.stringify(iss.input)} is not a valid port name: ` +
          'at most 63 lowercase letters, digits and -',
      })
      .optional(),
    protocol: protocolSchema,
    port: portNumberSchema,
    targetPort: z
      .union([portNumberSchema, z.string().refine((s) => s.length <= 15 && ianaSvcName.test(s))], {
        error: 'targetPort is a port number (1-65535) or a container port name',
      })
      .optional(),
    nodePort: portNumberSchema.optional(),
    appProtocol: z.string({ error: 'appProtocol is a string' }).optional(),
  })
  // The apiserver defaults targetPort to port.
  .transform((p) => ({ ...p, targetPort: p.targetPort ?? p.port }));

const ingressSchema = z.looseObject({
  ip: ipSchema.optional(),
  hostname: z.string({ error: 'hostname is a string' }).optional(),
  ipMode: z.enum(['VIP', 'Proxy'], { error: 'ipMode is VIP or Proxy' }).optional(),
});

const serviceSpecSchema = z
  .looseObject(
    {
      type: z
        .enum(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'], {
          error: 'type is one of ClusterIP, NodePort, LoadBalancer, ExternalName',
        })
        .default('ClusterIP'),
      ports: z.array(servicePortSchema, { error: 'ports is a list' }).optional(),
      selector: z.record(z.string(), z.string({ error: 'selector values are strings' })).optional(),
      externalTrafficPolicy: z
        .enum(['Cluster', 'Local'], { error: 'externalTrafficPolicy is Cluster or Local' })
        .optional(),
      internalTrafficPolicy: z
        .enum(['Cluster', 'Local'], { error: 'internalTrafficPolicy is Cluster or Local' })
        .optional(),
      sessionAffinity: z
        .enum(['None', 'ClientIP'], { error: 'sessionAffinity is None or ClientIP' })
        .default('None'),
      sessionAffinityConfig: z
        .looseObject({
          clientIP: z
            .looseObject({
              timeoutSeconds: z
                .number({ error: 'timeoutSeconds is an integer from 1 to 86400' })
                .int()
                .min(1)
                .max(86400)
                .optional(),
            })
            .optional(),
        })
        .optional(),
      loadBalancerClass: z.string({ error: 'loadBalancerClass is a string' }).optional(),
      loadBalancerIP: ipSchema.optional(),
      loadBalancerSourceRanges: z
        .array(cidrSchema, { error: 'expected a list of CIDRs' })
        .optional(),
      allocateLoadBalancerNodePorts: booleanSchema.optional(),
      ipFamilies: z
        .array(z.enum(['IPv4', 'IPv6'], { error: 'an IP family is IPv4 or IPv6' }))
        .max(2)
        .optional(),
      ipFamilyPolicy: z
        .enum(['SingleStack', 'PreferDualStack', 'RequireDualStack'], {
          error: 'ipFamilyPolicy is SingleStack, PreferDualStack or RequireDualStack',
        })
        .optional(),
    },
    { error: 'a Service needs a spec (a map)' },
  )
  .superRefine((spec, ctx) => {
    const ports = spec.ports ?? [];
    if ((spec.type === 'LoadBalancer' || spec.type === 'NodePort') && ports.length === 0)
      ctx.addIssue({
        code: 'custom',
        message: `a ${spec.type} Service needs at least one port`,
        path: ['ports'],
      });
    const names = new Map<string, number>();
    const numbers = new Map<string, number>();
    for (const [i, p] of ports.entries()) {
      if (ports.length > 1 && p.name === undefined)
        ctx.addIssue({
          code: 'custom',
          message: 'a Service with several ports must name each one',
          path: ['ports', i, 'name'],
        });
      if (p.name !== undefined) {
        const first = names.get(p.name);
        if (first !== undefined)
          ctx.addIssue({
            code: 'custom',
            message: `port name '${p.name}' is already used by ports[${first}]`,
            path: ['ports', i, 'name'],
          });
        else names.set(p.name, i);
      }
      const id = `${p.port}/${p.protocol}`;
      const first = numbers.get(id);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          message: `port ${id} is already defined by ports[${first}]`,
          path: ['ports', i, 'port'],
        });
      else numbers.set(id, i);
    }
  })
  // The apiserver's defaults for the traffic policies, so the model never has
  // to guess what an absent policy means.
  .transform((spec) => {
    const out = { ...spec };
    if (
      out.externalTrafficPolicy === undefined &&
      (out.type === 'LoadBalancer' || out.type === 'NodePort')
    )
      out.externalTrafficPolicy = 'Cluster';
    if (out.internalTrafficPolicy === undefined && out.type !== 'ExternalName')
      out.internalTrafficPolicy = 'Cluster';
    return out;
  });

export const serviceSchema = z.looseObject({
  apiVersion: z.literal('v1', { error: "a Service's apiVersion is v1" }),
  kind: z.literal('Service', { error: 'expected kind Service' }),
  metadata: namespacedMetaSchema('Service', 'dns1035Label'),
  spec: serviceSpecSchema,
  status: z
    .looseObject({
      loadBalancer: z
        .looseObject({
          ingress: z.array(ingressSchema, { error: 'ingress is a list' }).optional(),
        })
        .optional(),
    })
    .optional(),
});
