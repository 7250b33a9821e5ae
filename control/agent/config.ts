// The agent's settings: command-line flags over an optional YAML file over
// defaults, checked as a whole. Every problem is named by the flag or file
// key that set it, so one run shows everything to fix. Pure except for
// readConfigFile: the tests feed text, not files.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, isAbsolute, resolve } from 'node:path';

import { parseDocument } from 'yaml';
import { z } from 'zod';

import { DEFAULT_LOAD_BALANCER_CLASS } from '../model/index.js';
import { parseIP } from '../resources/addresses.js';
import { isDns1123Label, isDns1123Subdomain, labelKeyProblem } from '../resources/meta.js';

/**
 * Seed of the Maglev flow hash. Every node must use the same one, so a flow
 * that the routers move to another node lands on the same backend; a fixed
 * default means leaving it alone is always right.
 */
export const DEFAULT_HASH_SEED = 0x786c6221;
export const DEFAULT_PIN_DIR = '/sys/fs/bpf/xlb';
export const DEFAULT_METRICS_ADDRESS = '127.0.0.1:9597';
export const DEFAULT_LEASE_NAMESPACE = 'xlb-system';
export const DEFAULT_LEASE_NAME = 'xlb-controller';
/** How the BGP sessions are closed at stop: see AgentSettings.bgpStop. */
export const BGP_STOP_MODES = ['graceful', 'withdraw'] as const;
export type BgpStopMode = (typeof BGP_STOP_MODES)[number];
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** run: program the node; uninstall: detach and unpin what a previous run left. */
export type AgentMode = 'run' | 'uninstall';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface AgentSettings {
  /** The Node this agent programs (metadata.name). */
  nodeName: string;
  /** The interface that receives VIP traffic from the routers. */
  uplink: string;
  /** Network namespace of the uplink; absent: the agent's own. */
  netns?: string;
  /**
   * Standalone mode: the directory of manifest files that stands in for the
   * cluster. Empty: the Kubernetes API is the source.
   */
  manifests: string;
  /**
   * Kubernetes mode: a kubeconfig file; absent: in-cluster (the pod's service
   * account) when run in a pod, else $KUBECONFIG or ~/.kube/config.
   */
  kubeconfig?: string;
  /** Where the Lease that elects the one agent that allocates addresses lives. */
  leaseNamespace: string;
  leaseName: string;
  /** This agent in the Lease (holderIdentity): the pod's name, else the node's. */
  identity: string;
  /** Where the datapath's maps and programs are pinned (a directory of its own). */
  pinDir: string;
  hashSeed: number;
  /** Absent: the uplink's MTU. */
  mtu?: number;
  /** Absent: the Node object's InternalIP, else the uplink's address. */
  nodeIPv4?: string;
  nodeIPv6?: string;
  loadBalancerClass: string;
  defaultClass: boolean;
  metricsAddress: ListenAddress;
  logLevel: LogLevel;
  /**
   * How stopping leaves the BGP peers. graceful (absent): a peer that
   * negotiated graceful restart keeps our routes while the next agent starts
   * (the datapath keeps forwarding); the others get a withdrawal. withdraw:
   * every route is withdrawn (a node leaving for good).
   */
  bgpStop?: BgpStopMode;
}

/** What `xlb agent --uninstall` needs. */
export type UninstallSettings = Pick<AgentSettings, 'uplink' | 'netns' | 'pinDir' | 'logLevel'>;

export type SettingKey = keyof AgentSettings;

export interface AgentOptionSpec {
  key: SettingKey;
  /** commander syntax, e.g. '--hash-seed <seed>'. */
  flags: string;
  description: string;
}

/**
 * The flags of `xlb agent`, one per setting; the same names in camelCase are
 * the keys of the config file. One table, so help, file keys and error
 * messages cannot drift apart.
 */
export const AGENT_OPTIONS: readonly AgentOptionSpec[] = [
  {
    key: 'nodeName',
    flags: '--node-name <name>',
    description: 'the Node this agent programs (default: the host name, as the kubelet does)',
  },
  {
    key: 'uplink',
    flags: '--uplink <interface>',
    description: 'the interface that receives VIP traffic from the routers (required)',
  },
  {
    key: 'netns',
    flags: '--netns <name>',
    description: 'network namespace of the uplink, as `ip netns` names it (default: our own)',
  },
  {
    key: 'manifests',
    flags: '--manifests <directory>',
    description:
      'standalone mode: a directory of Service, EndpointSlice, Node and IPPool manifests instead of the Kubernetes API',
  },
  {
    key: 'kubeconfig',
    flags: '--kubeconfig <file>',
    description:
      'Kubernetes mode: the kubeconfig to use (default: in-cluster in a pod, else $KUBECONFIG or ~/.kube/config)',
  },
  {
    key: 'leaseNamespace',
    flags: '--lease-namespace <namespace>',
    description: `namespace of the leader-election Lease (default: $POD_NAMESPACE, else ${DEFAULT_LEASE_NAMESPACE})`,
  },
  {
    key: 'leaseName',
    flags: '--lease-name <name>',
    description: `name of the leader-election Lease (default: ${DEFAULT_LEASE_NAME})`,
  },
  {
    key: 'identity',
    flags: '--identity <name>',
    description: "this agent's name in the Lease (default: $POD_NAME, else the node name)",
  },
  {
    key: 'pinDir',
    flags: '--pin-dir <path>',
    description: `where the datapath is pinned, a directory of its own (default: ${DEFAULT_PIN_DIR})`,
  },
  {
    key: 'hashSeed',
    flags: '--hash-seed <seed>',
    description: `Maglev flow hash seed, the same on every node (default: 0x${DEFAULT_HASH_SEED.toString(16)})`,
  },
  { key: 'mtu', flags: '--mtu <bytes>', description: "uplink MTU (default: the uplink's)" },
  {
    key: 'nodeIPv4',
    flags: '--node-ipv4 <address>',
    description: "this node's IPv4 address (default: the Node's InternalIP, else the uplink's)",
  },
  {
    key: 'nodeIPv6',
    flags: '--node-ipv6 <address>',
    description: "this node's IPv6 address (default: the Node's InternalIP, else the uplink's)",
  },
  {
    key: 'loadBalancerClass',
    flags: '--load-balancer-class <class>',
    description: `spec.loadBalancerClass of the Services xlb serves (default: ${DEFAULT_LOAD_BALANCER_CLASS})`,
  },
  {
    key: 'defaultClass',
    flags: '--default-class',
    description: 'also serve LoadBalancer Services that name no class (default: off)',
  },
  {
    key: 'metricsAddress',
    flags: '--metrics-address <host:port>',
    description: `where /metrics, /healthz and /readyz listen; port 0 picks one (default: ${DEFAULT_METRICS_ADDRESS})`,
  },
  {
    key: 'logLevel',
    flags: '--log-level <level>',
    description: `${LOG_LEVELS.join(', ')} (default: info)`,
  },
  {
    key: 'bgpStop',
    flags: '--bgp-stop <mode>',
    description:
      'at stop, graceful: BGP peers that negotiated graceful restart keep the routes while the next agent starts; withdraw: withdraw every route, for a node leaving for good (default: graceful)',
  },
];

export const SETTING_KEYS = AGENT_OPTIONS.map((o) => o.key);

/** Where a setting's value came from: names the thing to fix in an error. */
export type SettingSource =
  { kind: 'flag'; flag: string } | { kind: 'file'; file: string } | { kind: 'default' };

export interface SettingIssue {
  key: SettingKey | undefined;
  source: SettingSource | undefined;
  message: string;
}

function describeSource(key: SettingKey | undefined, source: SettingSource | undefined): string {
  if (source?.kind === 'flag') return source.flag;
  if (source?.kind === 'file') return key === undefined ? source.file : `${key} in ${source.file}`;
  return key ?? 'settings';
}

export class AgentConfigError extends Error {
  constructor(readonly issues: readonly SettingIssue[]) {
    super(
      `invalid agent settings:\n${issues
        .map((i) => `  ${describeSource(i.key, i.source)}: ${i.message}`)
        .join('\n')}`,
    );
    this.name = 'AgentConfigError';
  }
}

type Check<T> = (value: unknown) => { value: T } | { problem: string };

// z.unknown() + transform, so a value from the command line (always a
// string) and the same value from YAML (a number, a boolean) go through one
// check with one message.
function setting<T>(check: Check<T>) {
  return z.unknown().transform((value, ctx): T | undefined => {
    if (value === undefined) return undefined;
    const r = check(value);
    if ('problem' in r) {
      ctx.addIssue({ code: 'custom', message: r.problem });
      return z.NEVER;
    }
    return r.value;
  });
}

const shown = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : JSON.stringify(v));

function stringCheck(test: (s: string) => boolean, rule: string): Check<string> {
  return (v) => {
    if (typeof v !== 'string') return { problem: `expected a string, got ${shown(v)}` };
    const s = v.trim();
    return test(s) ? { value: s } : { problem: `${shown(s)} is not valid: ${rule}` };
  };
}

function integerCheck(min: number, max: number, what: string, hex = false): Check<number> {
  return (v) => {
    let n: number = NaN;
    if (typeof v === 'number') n = v;
    else if (typeof v === 'string') {
      const s = v.trim();
      if (/^\d+$/.test(s)) n = Number(s);
      else if (hex && /^0x[0-9a-f]+$/i.test(s)) n = Number.parseInt(s.slice(2), 16);
    }
    if (!Number.isSafeInteger(n) || n < min || n > max)
      return { problem: `${shown(v)} is not valid: ${what} is an integer from ${min} to ${max}` };
    return { value: n };
  };
}

function addressCheck(family: 4 | 6): Check<string> {
  return (v) => {
    const ip = typeof v === 'string' ? parseIP(v.trim()) : undefined;
    if (ip === undefined || (ip.kind() === 'ipv4') !== (family === 4))
      return { problem: `${shown(v)} is not an IPv${family} address` };
    return { value: ip.toString() };
  };
}

const ifNameRule = "an interface name has 1 to 15 characters and no '/', ':' or spaces";
const isIfName = (s: string): boolean =>
  s.length >= 1 && s.length <= 15 && !/[/:\s]/.test(s) && s !== '.' && s !== '..';

const isNetnsName = (s: string): boolean =>
  s.length >= 1 && s.length <= 255 && !/[/\s]/.test(s) && s !== '.' && s !== '..';

// Uninstall unpins everything in this directory, so it must be xlb's own:
// never the BPF filesystem's root, where other programs pin theirs.
// The BPF filesystem refuses '.' in names.
const isPinDir = (s: string): boolean =>
  isAbsolute(s) &&
  !['/', '/sys', '/sys/fs', '/sys/fs/bpf'].includes(resolve(s)) &&
  !basename(resolve(s)).includes('.');

const checkLoadBalancerClass: Check<string> = (v) => {
  if (typeof v !== 'string') return { problem: `expected a string, got ${shown(v)}` };
  const s = v.trim();
  const problem = s.includes('/')
    ? labelKeyProblem(s)
    : `'${s}' is not valid: a load balancer class is a label-style name with a domain, like ${DEFAULT_LOAD_BALANCER_CLASS}`;
  return problem === undefined ? { value: s } : { problem };
};

const checkBoolean: Check<boolean> = (v) => {
  if (typeof v === 'boolean') return { value: v };
  if (v === 'true' || v === 'false') return { value: v === 'true' };
  return { problem: `${shown(v)} is not valid: expected true or false` };
};

const checkListen: Check<ListenAddress> = (v) => {
  const rule = 'expected host:port with an IP address, like 127.0.0.1:9597 or [::1]:9597';
  if (typeof v !== 'string') return { problem: `${shown(v)} is not valid: ${rule}` };
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(v.trim()) ?? /^([^:[\]]+):(\d+)$/.exec(v.trim());
  const ip = m ? parseIP(m[1]!) : undefined;
  if (!m || ip === undefined || (m[0].startsWith('[') && ip.kind() !== 'ipv6'))
    return { problem: `${shown(v)} is not valid: ${rule}` };
  const port = Number(m[2]);
  if (port > 65535)
    return { problem: `${shown(v)} is not valid: a port is from 0 (any free port) to 65535` };
  return { value: { host: ip.toString(), port } };
};

const checkLogLevel: Check<LogLevel> = (v) =>
  typeof v === 'string' && (LOG_LEVELS as readonly string[]).includes(v.trim())
    ? { value: v.trim() as LogLevel }
    : { problem: `${shown(v)} is not valid: the log level is one of ${LOG_LEVELS.join(', ')}` };

const checkBgpStop: Check<BgpStopMode> = (v) =>
  typeof v === 'string' && (BGP_STOP_MODES as readonly string[]).includes(v.trim())
    ? { value: v.trim() as BgpStopMode }
    : {
        problem: `${shown(v)} is not valid: the BGP stop mode is graceful (peers keep the routes across a restart) or withdraw`,
      };

const settingsSchema = z.object({
  nodeName: setting(
    stringCheck(
      isDns1123Subdomain,
      "a node name is lower-case letters, digits, '-' and '.', as in the Node's metadata.name",
    ),
  ),
  uplink: setting(stringCheck(isIfName, ifNameRule)),
  netns: setting(
    stringCheck(isNetnsName, "a network namespace name as `ip netns` lists it, without '/'"),
  ),
  manifests: setting(stringCheck((s) => s !== '', 'a directory path')),
  kubeconfig: setting(stringCheck((s) => s !== '', 'a file path')),
  leaseNamespace: setting(
    stringCheck(isDns1123Label, "a namespace name: lower-case letters, digits and '-'"),
  ),
  leaseName: setting(
    stringCheck(isDns1123Subdomain, "a Lease name: lower-case letters, digits, '-' and '.'"),
  ),
  identity: setting(stringCheck((s) => s !== '' && s.length <= 253, '1 to 253 characters')),
  pinDir: setting(
    stringCheck(
      isPinDir,
      "an absolute path of a directory of its own on the BPF filesystem, without '.' in its name, like /sys/fs/bpf/xlb (uninstall removes everything in it)",
    ),
  ),
  hashSeed: setting(integerCheck(0, 0xffffffff, 'the hash seed (decimal or 0x hex)', true)),
  mtu: setting(integerCheck(68, 65535, 'the MTU')),
  nodeIPv4: setting(addressCheck(4)),
  nodeIPv6: setting(addressCheck(6)),
  loadBalancerClass: setting(checkLoadBalancerClass),
  defaultClass: setting(checkBoolean),
  metricsAddress: setting(checkListen),
  logLevel: setting(checkLogLevel),
  bgpStop: setting(checkBgpStop),
});

export interface SettingsInput {
  mode: AgentMode;
  /** Values given on the command line; undefined (or absent) when not given. */
  flags: Partial<Record<SettingKey, unknown>>;
  /** The config file named by --config, already read. */
  file?: { path: string; text: string };
  /** Default node name; the host name when absent. */
  hostname?: string;
  /** Where POD_NAME and POD_NAMESPACE are read (the chart sets them); process.env when absent. */
  env?: Readonly<Record<string, string | undefined>>;
}

function flagName(key: SettingKey): string {
  const spec = AGENT_OPTIONS.find((o) => o.key === key);
  return spec?.flags.split(' ')[0] ?? key;
}

/** The file's settings, or the issues that make it unusable. */
function readFileSettings(file: { path: string; text: string }): {
  values: Partial<Record<SettingKey, unknown>>;
  issues: SettingIssue[];
} {
  const source: SettingSource = { kind: 'file', file: file.path };
  const issue = (message: string, key?: SettingKey): SettingIssue => ({ key, source, message });
  const doc = parseDocument(file.text, { prettyErrors: true });
  if (doc.errors.length > 0)
    return {
      values: {},
      issues: doc.errors.map((e) => issue(`not valid YAML: ${e.message.split('\n')[0]}`)),
    };
  const raw: unknown = doc.toJS();
  if (raw === null || raw === undefined) return { values: {}, issues: [] };
  if (typeof raw !== 'object' || Array.isArray(raw))
    return {
      values: {},
      issues: [issue(`expected a map of settings (${SETTING_KEYS.join(', ')})`)],
    };
  const values: Partial<Record<SettingKey, unknown>> = {};
  const issues: SettingIssue[] = [];
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (!(SETTING_KEYS as string[]).includes(key)) {
      issues.push(issue(`unknown setting '${key}': the file takes ${SETTING_KEYS.join(', ')}`));
      continue;
    }
    // null is what YAML gives for `mtu:` with nothing after it: not set.
    if (value !== null) values[key as SettingKey] = value;
  }
  // A relative manifest directory means relative to the file, wherever the
  // agent was started from.
  for (const key of ['manifests', 'kubeconfig'] as const) {
    const v = values[key];
    if (typeof v === 'string' && !isAbsolute(v)) values[key] = resolve(dirname(file.path), v);
  }
  return { values, issues };
}

function resolveSettings(input: SettingsInput): AgentSettings {
  const fromFile = input.file ? readFileSettings(input.file) : { values: {}, issues: [] };
  const raw = {} as Record<SettingKey, unknown>;
  const sources = {} as Record<SettingKey, SettingSource>;
  for (const key of SETTING_KEYS) {
    const flag = input.flags[key];
    if (flag !== undefined) {
      raw[key] = flag;
      sources[key] = { kind: 'flag', flag: flagName(key) };
    } else if (fromFile.values[key] !== undefined) {
      raw[key] = fromFile.values[key];
      sources[key] = { kind: 'file', file: input.file!.path };
    } else {
      raw[key] = undefined;
      sources[key] = { kind: 'default' };
    }
  }
  const issues: SettingIssue[] = [...fromFile.issues];
  const parsed = settingsSchema.safeParse(raw);
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const key = i.path[0] as SettingKey | undefined;
      issues.push({ key, source: key && sources[key], message: i.message });
    }
  }
  if (raw.uplink === undefined)
    issues.push({
      key: 'uplink',
      source: undefined,
      message: `required: give ${flagName('uplink')} or set uplink in the config file`,
    });
  if (raw.manifests !== undefined && raw.kubeconfig !== undefined)
    issues.push({
      key: 'kubeconfig',
      source: sources.kubeconfig,
      message: `the agent reads either manifests (standalone) or the Kubernetes API, not both: drop ${flagName('manifests')} or ${flagName('kubeconfig')}`,
    });
  if (issues.length > 0) throw new AgentConfigError(issues);
  const s = parsed.data!;
  const env = input.env ?? process.env;
  const nodeName = s.nodeName ?? (input.hostname ?? hostname()).toLowerCase();
  return {
    nodeName,
    uplink: s.uplink!,
    ...(s.netns !== undefined ? { netns: s.netns } : {}),
    manifests: s.manifests !== undefined ? resolve(s.manifests) : '',
    ...(s.kubeconfig !== undefined ? { kubeconfig: resolve(s.kubeconfig) } : {}),
    leaseNamespace: s.leaseNamespace ?? (env.POD_NAMESPACE || DEFAULT_LEASE_NAMESPACE),
    leaseName: s.leaseName ?? DEFAULT_LEASE_NAME,
    identity: s.identity ?? (env.POD_NAME || nodeName),
    pinDir: resolve(s.pinDir ?? DEFAULT_PIN_DIR),
    hashSeed: s.hashSeed ?? DEFAULT_HASH_SEED,
    ...(s.mtu !== undefined ? { mtu: s.mtu } : {}),
    ...(s.nodeIPv4 !== undefined ? { nodeIPv4: s.nodeIPv4 } : {}),
    ...(s.nodeIPv6 !== undefined ? { nodeIPv6: s.nodeIPv6 } : {}),
    loadBalancerClass: s.loadBalancerClass ?? DEFAULT_LOAD_BALANCER_CLASS,
    defaultClass: s.defaultClass ?? false,
    metricsAddress:
      s.metricsAddress ?? (checkListen(DEFAULT_METRICS_ADDRESS) as { value: ListenAddress }).value,
    logLevel: s.logLevel ?? 'info',
    ...(s.bgpStop !== undefined ? { bgpStop: s.bgpStop } : {}),
  };
}

/** Settings for `xlb agent`; throws AgentConfigError listing every problem. */
export function resolveAgentSettings(input: Omit<SettingsInput, 'mode'>): AgentSettings {
  return resolveSettings({ ...input, mode: 'run' });
}

/** Settings for `xlb agent --uninstall`: the other settings are checked but not needed. */
export function resolveUninstallSettings(input: Omit<SettingsInput, 'mode'>): UninstallSettings {
  const s = resolveSettings({ ...input, mode: 'uninstall' });
  return {
    uplink: s.uplink,
    ...(s.netns !== undefined ? { netns: s.netns } : {}),
    pinDir: s.pinDir,
    logLevel: s.logLevel,
  };
}

/** Reads the file named by --config; a missing file is a settings problem, not a crash. */
export function readConfigFile(path: string): { path: string; text: string } {
  try {
    return { path, text: readFileSync(path, 'utf8') };
  } catch (e) {
    throw new AgentConfigError([
      {
        key: undefined,
        source: { kind: 'flag', flag: '--config' },
        message: `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      },
    ]);
  }
}
