// The agent's settings (flags over file over defaults, every problem named by
// where it came from), the datapath settings derived from them, and the CLI's
// exit code for bad settings. No root needed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import {
  AgentConfigError,
  DEFAULT_HASH_SEED,
  readConfigFile,
  resolveAgentSettings,
  resolveUninstallSettings,
  type SettingKey,
} from '../control/agent/config.js';
import { resolveDatapathSettings } from '../control/agent/datapath-settings.js';
import { parseIpAddrJson, UplinkError } from '../control/agent/uplink.js';
import { DEFAULT_LOAD_BALANCER_CLASS } from '../control/model/index.js';
import { distScript } from '../control/paths.js';
import { node } from './support/k8s-objects.js';

const BASE = { uplink: 'eth0', manifests: '/etc/xlb/manifests' };

function settings(flags: Partial<Record<SettingKey, unknown>>, fileText?: string) {
  return resolveAgentSettings({
    flags,
    hostname: 'Node-A',
    env: {},
    ...(fileText !== undefined ? { file: { path: '/etc/xlb/agent.yaml', text: fileText } } : {}),
  });
}

function issues(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AgentConfigError);
    return (e as Error).message.split('\n').slice(1);
  }
  throw new Error('expected an AgentConfigError');
}

describe('agent settings', () => {
  it('fills every default from the flags it needs', () => {
    expect(settings(BASE)).toEqual({
      nodeName: 'node-a',
      uplink: 'eth0',
      manifests: '/etc/xlb/manifests',
      leaseNamespace: 'xlb-system',
      leaseName: 'xlb-controller',
      identity: 'node-a',
      pinDir: '/sys/fs/bpf/xlb',
      hashSeed: DEFAULT_HASH_SEED,
      loadBalancerClass: DEFAULT_LOAD_BALANCER_CLASS,
      defaultClass: false,
      metricsAddress: { host: '127.0.0.1', port: 9597 },
      logLevel: 'info',
    });
  });

  it('reads the Kubernetes API without --manifests, named in the Lease as the chart says', () => {
    const s = resolveAgentSettings({
      flags: { uplink: 'eth0', kubeconfig: '/root/kube.yaml', leaseName: 'xlb' },
      hostname: 'node-a',
      env: { POD_NAME: 'xlb-7fz2k', POD_NAMESPACE: 'kube-lb' },
    });
    expect(s).toMatchObject({
      manifests: '',
      kubeconfig: '/root/kube.yaml',
      leaseNamespace: 'kube-lb',
      leaseName: 'xlb',
      identity: 'xlb-7fz2k',
    });
    expect(
      issues(() => settings({ ...BASE, kubeconfig: 'k.yaml', leaseNamespace: 'Bad_NS' })),
    ).toEqual([
      expect.stringMatching(/^ {2}--lease-namespace: 'Bad_NS' is not valid: a namespace name/),
      '  --kubeconfig: the agent reads either manifests (standalone) or the Kubernetes API, not both: drop --manifests or --kubeconfig',
    ]);
  });

  it('reads command-line strings and YAML values alike', () => {
    const fromFlags = settings({
      ...BASE,
      nodeName: 'node-b',
      netns: 'xlb-node-b',
      pinDir: '/sys/fs/bpf/xlb-test',
      hashSeed: '0xDEADbeef',
      mtu: '9000',
      nodeIPv4: '198.51.100.2',
      nodeIPv6: '2001:DB8::2',
      loadBalancerClass: 'example.com/lb',
      defaultClass: true,
      metricsAddress: '[::1]:0',
      logLevel: 'debug',
    });
    const fromFile = settings(
      {},
      `uplink: eth0
manifests: /etc/xlb/manifests
nodeName: node-b
netns: xlb-node-b
pinDir: /sys/fs/bpf/xlb-test
hashSeed: 0xdeadbeef
mtu: 9000
nodeIPv4: 198.51.100.2
nodeIPv6: 2001:db8::2
loadBalancerClass: example.com/lb
defaultClass: true
metricsAddress: "[::1]:0"
logLevel: debug
`,
    );
    expect(fromFlags).toEqual(fromFile);
    expect(fromFlags).toMatchObject({
      hashSeed: 0xdeadbeef,
      mtu: 9000,
      nodeIPv6: '2001:db8::2',
      metricsAddress: { host: '::1', port: 0 },
    });
    expect(settings({ ...BASE, hashSeed: '12345' }).hashSeed).toBe(12345);
  });

  it('lets flags win over the file, and reads a relative manifest directory from the file as relative to it', () => {
    const s = settings(
      { mtu: '1400', defaultClass: false },
      'uplink: eth1\nmanifests: manifests.d\nmtu: 9000\ndefaultClass: true\nmetricsAddress:\n',
    );
    expect(s).toMatchObject({
      uplink: 'eth1',
      manifests: '/etc/xlb/manifests.d',
      mtu: 1400,
      defaultClass: false,
      metricsAddress: { host: '127.0.0.1', port: 9597 },
    });
  });

  it('reports every bad value at once, each by the flag or file key that set it', () => {
    const lines = issues(() =>
      settings(
        {
          mtu: '70000',
          hashSeed: 'seed',
          nodeIPv4: '2001:db8::1',
          metricsAddress: 'localhost:9597',
        },
        `uplink: this-name-is-far-too-long
manifests: /m
nodeIPv6: 192.0.2.1
loadBalancerClass: xlb
logLevel: loud
pinDir: /sys/fs/bpf
defaultClass: yes
colour: blue
`,
      ),
    );
    expect(lines).toEqual([
      "  /etc/xlb/agent.yaml: unknown setting 'colour': the file takes nodeName, uplink, netns, manifests, kubeconfig, leaseNamespace, leaseName, identity, pinDir, hashSeed, mtu, nodeIPv4, nodeIPv6, loadBalancerClass, defaultClass, metricsAddress, logLevel, bgpStop",
      expect.stringMatching(/^ {2}uplink in \/etc\/xlb\/agent.yaml: .*1 to 15 characters/),
      expect.stringMatching(/^ {2}pinDir in \/etc\/xlb\/agent.yaml: .*directory of its own/),
      "  --hash-seed: 'seed' is not valid: the hash seed (decimal or 0x hex) is an integer from 0 to 4294967295",
      "  --mtu: '70000' is not valid: the MTU is an integer from 68 to 65535",
      "  --node-ipv4: '2001:db8::1' is not an IPv4 address",
      "  nodeIPv6 in /etc/xlb/agent.yaml: '192.0.2.1' is not an IPv6 address",
      expect.stringMatching(
        /^ {2}loadBalancerClass in \/etc\/xlb\/agent.yaml: 'xlb' is not valid: .*domain/,
      ),
      "  defaultClass in /etc/xlb/agent.yaml: 'yes' is not valid: expected true or false",
      expect.stringMatching(
        /^ {2}--metrics-address: 'localhost:9597' is not valid: expected host:port/,
      ),
      expect.stringMatching(
        /^ {2}logLevel in \/etc\/xlb\/agent.yaml: 'loud' is not valid: the log level is one of/,
      ),
    ]);
  });

  it('names what is missing and how to give it', () => {
    expect(issues(() => settings({}))).toEqual([
      '  uplink: required: give --uplink or set uplink in the config file',
    ]);
  });

  it('uninstall needs only the uplink, and checks the rest all the same', () => {
    expect(
      resolveUninstallSettings({
        flags: { uplink: 'eth0', pinDir: '/sys/fs/bpf/xlb-x', netns: 'n1' },
      }),
    ).toEqual({ uplink: 'eth0', pinDir: '/sys/fs/bpf/xlb-x', netns: 'n1', logLevel: 'info' });
    expect(issues(() => resolveUninstallSettings({ flags: { uplink: 'eth0', mtu: 'x' } }))).toEqual(
      ["  --mtu: 'x' is not valid: the MTU is an integer from 68 to 65535"],
    );
  });

  it('rejects a config file that is not YAML or not a map, and one that cannot be read', () => {
    expect(issues(() => settings(BASE, 'uplink: [eth0'))[0]).toMatch(
      /^ {2}\/etc\/xlb\/agent.yaml: not valid YAML/,
    );
    expect(issues(() => settings(BASE, '- uplink: eth0'))).toEqual([
      expect.stringMatching(/^ {2}\/etc\/xlb\/agent.yaml: expected a map of settings/),
    ]);
    expect(settings(BASE, '# nothing set yet\n').uplink).toBe('eth0');
    expect(issues(() => readConfigFile('/nonexistent/agent.yaml'))).toEqual([
      '  --config: cannot read /nonexistent/agent.yaml: ENOENT',
    ]);
  });

  it('accepts port 0 and IPv6 listen addresses, and refuses ports out of range', () => {
    expect(settings({ ...BASE, metricsAddress: '0.0.0.0:0' }).metricsAddress).toEqual({
      host: '0.0.0.0',
      port: 0,
    });
    expect(issues(() => settings({ ...BASE, metricsAddress: '127.0.0.1:65536' }))[0]).toMatch(
      /a port is from 0/,
    );
    expect(issues(() => settings({ ...BASE, metricsAddress: '[192.0.2.1]:80' }))[0]).toMatch(
      /expected host:port/,
    );
  });
});

describe('datapath settings from the agent settings, the Node object and the uplink', () => {
  const uplink = { mtu: 1500, ipv4: ['192.0.2.99'], ipv6: ['2001:db8::99'] };
  const base = { nodeName: 'node-a', hashSeed: 7 };

  it("takes the Node's InternalIP first, as the other nodes do when they tunnel here", () => {
    const r = resolveDatapathSettings(
      base,
      node({ name: 'node-a', internal: ['198.51.100.2', '2001:db8:a::2'] }),
      uplink,
    );
    expect(r.settings).toEqual({
      hashSeed: 7,
      mtu: 1500,
      nodeIPv4: '198.51.100.2',
      nodeIPv6: '2001:db8:a::2',
    });
    expect(r.origins).toEqual({ mtu: 'uplink', nodeIPv4: 'Node', nodeIPv6: 'Node' });
  });

  it("falls back to the uplink's addresses, then to none; settings beat both", () => {
    expect(resolveDatapathSettings(base, undefined, uplink).origins).toEqual({
      mtu: 'uplink',
      nodeIPv4: 'uplink',
      nodeIPv6: 'uplink',
    });
    const none = resolveDatapathSettings(base, node({ name: 'node-a', internal: [] }), {
      mtu: 65536,
      ipv4: [],
      ipv6: [],
    });
    expect(none.settings).toEqual({ hashSeed: 7, mtu: 65535, nodeIPv4: '0.0.0.0', nodeIPv6: '::' });
    const set = resolveDatapathSettings(
      { ...base, mtu: 9000, nodeIPv4: '203.0.113.9' },
      node({ name: 'node-a', internal: ['198.51.100.2'] }),
      uplink,
    );
    expect(set.settings).toMatchObject({
      mtu: 9000,
      nodeIPv4: '203.0.113.9',
      nodeIPv6: '2001:db8::99',
    });
    expect(set.origins).toEqual({ mtu: 'settings', nodeIPv4: 'settings', nodeIPv6: 'uplink' });
  });
});

describe('uplink facts from ip -j addr', () => {
  it('keeps global addresses only, in order', () => {
    const json = JSON.stringify([
      {
        ifname: 'eth0',
        mtu: 1500,
        addr_info: [
          { family: 'inet', local: '198.51.100.2', scope: 'global' },
          { family: 'inet6', local: 'fe80::1', scope: 'link' },
          { family: 'inet6', local: '2001:db8:a::2', scope: 'global' },
          { family: 'inet', local: '198.51.100.3', scope: 'global' },
        ],
      },
    ]);
    expect(parseIpAddrJson(json, 'eth0')).toEqual({
      mtu: 1500,
      ipv4: ['198.51.100.2', '198.51.100.3'],
      ipv6: ['2001:db8:a::2'],
    });
    expect(() => parseIpAddrJson('[]', 'eth0')).toThrow(UplinkError);
  });
});

describe('xlb agent with bad settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-agent-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 2 with one message naming each problem, before needing root', () => {
    const config = join(dir, 'agent.yaml');
    writeFileSync(config, 'uplink: eth0\nmanifests: .\nmtu: 20\n');
    const r = spawnSync(
      process.execPath,
      [distScript('control/cli/main.js'), 'agent', '--config', config, '--node-ipv4', 'nope'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `xlb agent: invalid agent settings:\n  mtu in ${config}: 20 is not valid: the MTU is an integer from 68 to 65535\n  --node-ipv4: 'nope' is not an IPv4 address\n`,
    );
  });
});
