// A pod on a node's bridge: its own namespace, a veth into the node's br0,
// default routes via the bridge, and pod-server answering on POD_PORTS. The
// testbed, the agent's test topology and the demo build pods the same way.
import { spawn, type ChildProcess } from 'node:child_process';

import { distScript } from '../paths.js';
import { ip } from './ip.js';
import type { Topology } from './topology.js';

export const POD_PORTS = { http: 8080, tcp: 9000, udp: 5353 } as const;

export interface PodPlacement {
  name: string;
  /** The node namespace whose br0 the pod hangs off. */
  nodeNs: string;
  v4: string;
  v6: string;
  v4Gateway: string;
  v6Gateway: string;
}

/** Builds the pod and waits until its server listens; returns its namespace and process. */
export async function addPod(
  topo: Topology,
  p: PodPlacement,
): Promise<{ ns: string; child: ChildProcess }> {
  const ns = topo.addNamespace(`pod-${p.name}`);
  const hostEnd = `v-${p.name}`.slice(0, 15);
  topo.addVeth(
    { ns: p.nodeNs, ifname: hostEnd },
    { ns, ifname: 'eth0', addresses: [`${p.v4}/27`, `${p.v6}/64`] },
  );
  ip('-n', p.nodeNs, 'link', 'set', hostEnd, 'master', 'br0');
  ip('-n', ns, 'route', 'add', 'default', 'via', p.v4Gateway);
  ip('-n', ns, '-6', 'route', 'add', 'default', 'via', p.v6Gateway);
  const child = await startPodServer(topo, p.name, ns);
  return { ns, child };
}

function startPodServer(topo: Topology, name: string, ns: string): Promise<ChildProcess> {
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      distScript('control/topology/pod-server.js'),
      name,
      String(POD_PORTS.http),
      String(POD_PORTS.tcp),
      String(POD_PORTS.udp),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  topo.onDestroy(`pod ${name}`, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`pod ${name} exited (${code}): ${stderr}`)));
  });
}
