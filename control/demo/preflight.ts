// What the demo needs from the machine, checked before anything is built so a
// missing piece is one sentence naming it instead of a half-built topology.
import { existsSync } from 'node:fs';

import { bpfObjectPath, distScript, nativeAddonPath } from '../paths.js';
import { ensureBpffs } from '../system/bpffs.js';
import { PreflightError, requireCommands } from '../system/preflight.js';
import { Topology } from '../topology/topology.js';
import { VethPass } from '../topology/veth-pass.js';
import { DEMO_PREFIX } from './leftovers.js';
import { KUBECTL } from './source.js';

export const ROOT_MESSAGE =
  'xlb demo needs root: it creates network namespaces and loads XDP programs; run it with sudo';

export class DemoPreflightError extends PreflightError {
  constructor(message: string) {
    super(message);
    this.name = 'DemoPreflightError';
  }
}

const COMMANDS = ['ip', 'ethtool', 'sysctl', 'bird', 'birdc'];

/** Build outputs the demo runs; the set-up command makes them. */
function builtFiles(kube: boolean): string[] {
  return [
    nativeAddonPath(),
    bpfObjectPath('xlb_xdp'),
    bpfObjectPath('xlb_tc'),
    bpfObjectPath('test/veth_pass'),
    distScript('control/topology/pod-server.js'),
    distScript('control/topology/probe.js'),
    ...(kube ? [KUBECTL] : []),
  ];
}

/**
 * The kernel part, tried for real: the BPF system call (loading a program),
 * XDP attached natively to a veth, and network namespaces. A throwaway pair
 * of namespaces, removed before returning.
 */
function checkKernel(): void {
  const topo = new Topology(`${DEMO_PREFIX}-check`);
  try {
    let step = 'create network namespaces';
    try {
      const a = topo.addNamespace('a');
      const b = topo.addNamespace('b');
      step = 'create a veth pair';
      topo.addVeth({ ns: a, ifname: 'eth0' }, { ns: b, ifname: 'eth0' });
      step = 'load a BPF program and attach it to a veth in native XDP mode';
      new VethPass(topo).attach(b, 'eth0');
    } catch (e) {
      throw new DemoPreflightError(
        `xlb demo needs a kernel that can ${step} (Linux 5.15 or newer with BPF, XDP and ` +
          `veth): this one cannot: ${(e as Error).message}`,
      );
    }
  } finally {
    topo.destroy();
  }
}

/** Root, commands, build outputs, bpffs, the kernel's BPF/XDP/netns support. */
export function demoPreflight(options: { kube: boolean }): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0)
    throw new DemoPreflightError(ROOT_MESSAGE);
  try {
    requireCommands('xlb demo', COMMANDS);
  } catch (e) {
    throw new DemoPreflightError((e as Error).message);
  }
  const missing = builtFiles(options.kube).filter((f) => !existsSync(f));
  if (missing.length > 0)
    throw new DemoPreflightError(
      `xlb demo needs ${missing.join(', ')}: run the set-up command (scripts/setup.sh) first`,
    );
  try {
    ensureBpffs();
  } catch (e) {
    throw new DemoPreflightError(
      `xlb demo cannot mount the BPF filesystem at /sys/fs/bpf: ${(e as Error).message}`,
    );
  }
  checkKernel();
}
