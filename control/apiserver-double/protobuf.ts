// Decoding of Kubernetes protobuf request bodies. kubectl's typed clients
// (kubectl create namespace, kubectl create service ...) send built-in
// objects as application/vnd.kubernetes.protobuf and do not fall back to
// JSON, so the double reads the messages those commands send: the "k8s\0"
// envelope (runtime.Unknown) and, from k8s.io/api's generated.proto,
// Namespace, Service and DeleteOptions with what they contain. Responses are
// always JSON, which those clients accept. Other kinds in protobuf get 415.
import { ApiError } from './errors.js';
import { isObj, str, type Obj } from './json.js';

interface Field {
  name: string;
  /** string, int, bool, bytes, time, intOrString, stringMap, or a message name. */
  type: string;
  repeated?: boolean;
  /** A Go pointer: present means set, even when zero. */
  ptr?: boolean;
}

type Message = Record<number, Field>;

const f = (name: string, type: Field['type'], opts: Omit<Field, 'name' | 'type'> = {}): Field => ({
  name,
  type,
  ...opts,
});

// Field numbers from k8s.io/api and k8s.io/apimachinery generated.proto.
const MESSAGES: Record<string, Message> = {
  Unknown: {
    1: f('typeMeta', 'TypeMeta'),
    2: f('raw', 'bytes'),
    3: f('contentEncoding', 'string'),
    4: f('contentType', 'string'),
  },
  TypeMeta: { 1: f('apiVersion', 'string'), 2: f('kind', 'string') },
  ObjectMeta: {
    1: f('name', 'string'),
    2: f('generateName', 'string'),
    3: f('namespace', 'string'),
    5: f('uid', 'string'),
    6: f('resourceVersion', 'string'),
    7: f('generation', 'int'),
    8: f('creationTimestamp', 'time'),
    9: f('deletionTimestamp', 'time', { ptr: true }),
    10: f('deletionGracePeriodSeconds', 'int', { ptr: true }),
    11: f('labels', 'stringMap'),
    12: f('annotations', 'stringMap'),
    13: f('ownerReferences', 'OwnerReference', { repeated: true }),
    14: f('finalizers', 'string', { repeated: true }),
  },
  OwnerReference: {
    1: f('kind', 'string'),
    3: f('name', 'string'),
    4: f('uid', 'string'),
    5: f('apiVersion', 'string'),
    6: f('controller', 'bool', { ptr: true }),
    7: f('blockOwnerDeletion', 'bool', { ptr: true }),
  },
  Condition: {
    1: f('type', 'string'),
    2: f('status', 'string'),
    3: f('observedGeneration', 'int'),
    4: f('lastTransitionTime', 'time'),
    5: f('reason', 'string'),
    6: f('message', 'string'),
  },
  Namespace: {
    1: f('metadata', 'ObjectMeta'),
    2: f('spec', 'NamespaceSpec'),
    3: f('status', 'NamespaceStatus'),
  },
  NamespaceSpec: { 1: f('finalizers', 'string', { repeated: true }) },
  NamespaceStatus: {
    1: f('phase', 'string'),
    2: f('conditions', 'NamespaceCondition', { repeated: true }),
  },
  NamespaceCondition: {
    1: f('type', 'string'),
    2: f('status', 'string'),
    4: f('lastTransitionTime', 'time'),
    5: f('reason', 'string'),
    6: f('message', 'string'),
  },
  Service: {
    1: f('metadata', 'ObjectMeta'),
    2: f('spec', 'ServiceSpec'),
    3: f('status', 'ServiceStatus'),
  },
  ServiceSpec: {
    1: f('ports', 'ServicePort', { repeated: true }),
    2: f('selector', 'stringMap'),
    3: f('clusterIP', 'string'),
    4: f('type', 'string'),
    5: f('externalIPs', 'string', { repeated: true }),
    7: f('sessionAffinity', 'string'),
    8: f('loadBalancerIP', 'string'),
    9: f('loadBalancerSourceRanges', 'string', { repeated: true }),
    10: f('externalName', 'string'),
    11: f('externalTrafficPolicy', 'string'),
    12: f('healthCheckNodePort', 'int'),
    13: f('publishNotReadyAddresses', 'bool'),
    14: f('sessionAffinityConfig', 'SessionAffinityConfig', { ptr: true }),
    17: f('ipFamilyPolicy', 'string', { ptr: true }),
    18: f('clusterIPs', 'string', { repeated: true }),
    19: f('ipFamilies', 'string', { repeated: true }),
    20: f('allocateLoadBalancerNodePorts', 'bool', { ptr: true }),
    21: f('loadBalancerClass', 'string', { ptr: true }),
    22: f('internalTrafficPolicy', 'string', { ptr: true }),
    23: f('trafficDistribution', 'string', { ptr: true }),
  },
  ServicePort: {
    1: f('name', 'string'),
    2: f('protocol', 'string'),
    3: f('port', 'int'),
    4: f('targetPort', 'intOrString'),
    5: f('nodePort', 'int'),
    6: f('appProtocol', 'string', { ptr: true }),
  },
  SessionAffinityConfig: { 1: f('clientIP', 'ClientIPConfig', { ptr: true }) },
  ClientIPConfig: { 1: f('timeoutSeconds', 'int', { ptr: true }) },
  ServiceStatus: {
    1: f('loadBalancer', 'LoadBalancerStatus'),
    2: f('conditions', 'Condition', { repeated: true }),
  },
  LoadBalancerStatus: { 1: f('ingress', 'LoadBalancerIngress', { repeated: true }) },
  LoadBalancerIngress: {
    1: f('ip', 'string'),
    2: f('hostname', 'string'),
    3: f('ipMode', 'string', { ptr: true }),
    4: f('ports', 'PortStatus', { repeated: true }),
  },
  PortStatus: {
    1: f('port', 'int'),
    2: f('protocol', 'string'),
    3: f('error', 'string', { ptr: true }),
  },
  DeleteOptions: {
    1: f('gracePeriodSeconds', 'int', { ptr: true }),
    2: f('preconditions', 'Preconditions', { ptr: true }),
    3: f('orphanDependents', 'bool', { ptr: true }),
    4: f('propagationPolicy', 'string', { ptr: true }),
    5: f('dryRun', 'string', { repeated: true }),
  },
  Preconditions: {
    1: f('uid', 'string', { ptr: true }),
    2: f('resourceVersion', 'string', { ptr: true }),
  },
};

/** The message types a protobuf body may carry, by kind. */
const KINDS: Record<string, string> = {
  Namespace: 'Namespace',
  Service: 'Service',
  DeleteOptions: 'DeleteOptions',
};

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  }

  bytes(): Uint8Array {
    const len = Number(this.varint());
    if (this.pos + len > this.buf.length) throw new Error('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

function isZero(v: unknown): boolean {
  if (v === '' || v === 0 || v === false || v === undefined) return true;
  if (Array.isArray(v)) return v.length === 0;
  return isObj(v) && Object.keys(v).length === 0;
}

function decodeTime(buf: Uint8Array): string | undefined {
  const t = decodeMessage(buf, { 1: f('seconds', 'int'), 2: f('nanos', 'int') });
  const seconds = typeof t.seconds === 'number' ? t.seconds : 0;
  if (seconds === 0 && !t.nanos) return undefined;
  return new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}

function decodeValue(r: Reader, wire: number, field: Field): unknown {
  switch (field.type) {
    case 'string':
      return new TextDecoder().decode(r.bytes());
    case 'bytes':
      return r.bytes();
    case 'int':
      return Number(BigInt.asIntN(64, r.varint()));
    case 'bool':
      return r.varint() !== 0n;
    case 'time':
      return decodeTime(r.bytes());
    case 'intOrString': {
      const v = decodeMessage(r.bytes(), {
        1: f('type', 'int'),
        2: f('intVal', 'int'),
        3: f('strVal', 'string'),
      });
      return v.type === 1 ? (v.strVal ?? '') : (v.intVal ?? 0);
    }
    case 'stringMap': {
      const e = decodeMessage(r.bytes(), { 1: f('key', 'string'), 2: f('value', 'string') });
      return [str(e.key ?? ''), str(e.value ?? '')];
    }
    default: {
      const m = MESSAGES[field.type];
      if (m === undefined || wire !== 2) throw new Error(`no message ${field.type}`);
      return decodeMessage(r.bytes(), m);
    }
  }
}

function decodeMessage(buf: Uint8Array, m: Message): Obj {
  const r = new Reader(buf);
  const out: Obj = {};
  const present = new Set<string>();
  while (r.pos < buf.length) {
    const key = Number(r.varint());
    const num = key >>> 3;
    const wire = key & 7;
    const field = m[num];
    if (field === undefined) {
      r.skip(wire);
      continue;
    }
    // Packed repeated scalars are not used by these messages' Go encoders.
    const v = decodeValue(r, wire, field);
    present.add(field.name);
    if (field.type === 'stringMap') {
      const [k, val] = v as [string, string];
      const map = out[field.name];
      out[field.name] = { ...(isObj(map) ? map : {}), [k]: val };
    } else if (field.repeated) {
      out[field.name] = [
        ...(Array.isArray(out[field.name]) ? (out[field.name] as unknown[]) : []),
        v,
      ];
    } else out[field.name] = v;
  }
  // Go encodes every non-pointer field; JSON (omitempty) would leave zero values out.
  for (const field of Object.values(m)) {
    if (!field.ptr && isZero(out[field.name])) delete out[field.name];
    else if (field.ptr && !present.has(field.name)) delete out[field.name];
  }
  return out;
}

/** A protobuf request body as the JSON object the client meant. */
export function decodeProtobuf(body: Buffer): Obj {
  const magic = [0x6b, 0x38, 0x73, 0x00];
  if (body.length < 4 || magic.some((b, i) => body[i] !== b)) {
    throw new ApiError(400, 'BadRequest', 'protobuf body does not start with the k8s envelope');
  }
  try {
    const unknown = decodeMessage(body.subarray(4), MESSAGES.Unknown!);
    const typeMeta = isObj(unknown.typeMeta) ? unknown.typeMeta : {};
    const kind = str(typeMeta.kind ?? '');
    const messageType = KINDS[kind];
    if (messageType === undefined) {
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        `the test API server cannot decode ${kind || 'this object'} from protobuf; send application/json`,
      );
    }
    const raw = unknown.raw instanceof Uint8Array ? unknown.raw : new Uint8Array();
    return { ...typeMeta, ...decodeMessage(raw, MESSAGES[messageType]!) };
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError(
      400,
      'BadRequest',
      `couldn't decode the protobuf body: ${(e as Error).message}`,
    );
  }
}
