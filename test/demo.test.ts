// Runs the README's main command, the built `xlb demo`, as a user would, and
// holds what it printed to reality while it holds: the addresses against the
// agents' /status and the router's kernel, the next hops against the router,
// the pods that answered against the pods that answer now, and (--kube) the
// Services' addresses against kubectl. Then Ctrl-C: exit 0 and nothing left.
// Also: Ctrl-C half-way cleans up, and without root it refuses clearly.
//
// One file on purpose: two demos never run at once (the second refuses).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { clearLeftovers, STATE_DIR } from '../control/demo/leftovers.js';
import { ROOT_MESSAGE } from '../control/demo/preflight.js';
import { projectRoot } from '../control/paths.js';
import { agentStatus } from '../control/demo/observe.js';
import { childOutput } from '../control/topology/child-output.js';
import { BED } from '../control/topology/cluster.js';
import { requirePrivileges } from './support/privileged.js';

const cli = join(projectRoot(), 'dist', 'control', 'cli', 'main.js');
const probe = join(projectRoot(), 'dist', 'control', 'topology', 'probe.js');
const kubectlPath = join(projectRoot(), '.setup', 'kube', 'kubectl');
const node24 = join(projectRoot(), '.setup', 'node24', 'bin', 'node');

/** The demo as a child process: its output so far, and its exit. */
class DemoProcess {
  out = '';
  err = '';
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(args: string[], node = process.execPath) {
    this.child = spawn(node, [cli, 'demo', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.err += d.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits until the output matches, failing early if the demo exits first. */
  async waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.out);
      if (m) return m;
      if (!this.running)
        throw new Error(`the demo exited before printing ${pattern}:\n${this.out}\n${this.err}`);
      if (Date.now() > deadline)
        throw new Error(`the demo did not print ${pattern} in ${timeoutMs} ms:\n${this.out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Closes our end of its stdout, as `xlb demo | head` does once head has its lines. */
  closeOutput(): void {
    this.child.stdout!.destroy();
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }
}

let demo: DemoProcess | undefined;

/** Whatever happened in a test, the demo is stopped and every trace of it removed. */
afterEach(async () => {
  if (demo?.running) {
    demo.signal('SIGINT');
    const done = await Promise.race([
      demo.exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 30_000)),
    ]);
    if (!done) demo.signal('SIGKILL');
  }
  demo = undefined;
  clearLeftovers();
});

function netnsList(): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
}

/** Processes whose command line names the demo's namespaces (agents), or that run in them. */
function processesOf(tag: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(`xlbdemo-${tag}`)) found.push(`${entry}: ${cmdline}`);
    } catch {
      // Exited meanwhile.
    }
  }
  return found;
}

/** The processes running inside the demo's namespaces now: BIRD, pod servers, probes. */
function pidsInNamespaces(tag: string): number[] {
  const pids: number[] = [];
  for (const ns of netnsList().filter((n) => n.includes(tag))) {
    const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
    for (const p of r.stdout.split('\n')) if (/^\d+$/.test(p.trim())) pids.push(Number(p));
  }
  return pids;
}

/**
 * Everything the demo made is gone: namespaces, pins, agents, the processes
 * that ran in its namespaces (`inside`, listed while it ran), BIRD's and its
 * own temp dirs, its state file.
 */
function expectNothingLeft(tag: string, out: string, inside: readonly number[]): void {
  expect(netnsList().filter((n) => n.includes(tag))).toEqual([]);
  expect(readdirSync('/sys/fs/bpf').filter((p) => p.includes(tag))).toEqual([]);
  expect(processesOf(tag)).toEqual([]);
  expect(inside.filter((pid) => existsSync(`/proc/${pid}`))).toEqual([]);
  const temp = /temp dir: (\S+)/.exec(out)?.[1];
  expect(temp, 'the demo names its temp dir').toBeDefined();
  expect(existsSync(temp!)).toBe(false);
  const birdDir = /birdc -s (\S+)\/bird\.ctl/.exec(out)?.[1];
  if (birdDir) expect(existsSync(birdDir)).toBe(false);
  expect(existsSync('/run/xlb-demo') ? readdirSync('/run/xlb-demo') : []).toEqual([]);
}

/** `count` GETs from the demo's client namespace: the pods that answered, and the clients they saw. */
function askFromClient(
  tag: string,
  vip: string,
  count: number,
): { pods: string[]; clients: string[] } {
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      `xlbdemo-${tag}-client`,
      process.execPath,
      probe,
      'burst',
      `http://${vip}/`,
      String(count),
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  expect(r.status, r.stderr).toBe(0);
  const answers = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { error?: string; body?: { pod: string; client: string } });
  expect(answers.filter((a) => a.error)).toEqual([]);
  return {
    pods: [...new Set(answers.map((a) => a.body!.pod))].sort(),
    clients: [...new Set(answers.map((a) => a.body!.client))],
  };
}

/** The router's next hops to vip/32 now. */
function routerHops(tag: string, vip: string): string[] {
  const r = spawnSync('ip', ['-n', `xlbdemo-${tag}-router`, 'route', 'show', `${vip}/32`], {
    encoding: 'utf8',
  });
  return [...r.stdout.matchAll(/via (\S+)/g)].map((m) => m[1]!).sort();
}

/** The section of the output between step n's line and the next step's. */
function step(out: string, n: number): string {
  const start = out.indexOf(`[${n}/9]`);
  const end = out.indexOf(`[${n + 1}/9]`);
  expect(start, `step ${n} in the output`).toBeGreaterThanOrEqual(0);
  return out.slice(start, end < 0 ? undefined : end);
}

/** Pods of the request tables in a section (rows: service, pod, node, requests, client). */
function podsAnswering(section: string): string[] {
  const pods = new Set<string>();
  for (const m of section.matchAll(
    /^\s+\S+(?: \((?:Cluster|Local)\))?\s+((?:web|edge)-\d+)\s+node-[a-c]\s+\d+\s+/gm,
  ))
    pods.add(m[1]!);
  return [...pods].sort();
}

interface Printed {
  tag: string;
  vips: Map<string, string>;
  agents: Map<string, string>;
}

/** Runs the demo with --hold to its hints and checks the printed facts against reality. */
async function holdAndCheck(args: string[]): Promise<{ printed: Printed; out: string }> {
  demo = new DemoProcess(['--hold', ...args]);
  await demo.waitFor(/Press Ctrl-C to clean up and exit\./, 90_000);
  const out = demo.out;
  expect(out).toMatch(/all \d+ checks held/);
  const tag = /namespaces: xlbdemo-([0-9a-f]{6})-\*/.exec(out)![1]!;

  const agents = new Map<string, string>();
  for (const m of step(out, 3).matchAll(/^\s+(node-[a-c])\s+(http:\/\/127\.0\.0\.1:\d+)\s/gm))
    agents.set(m[1]!, m[2]!);
  expect([...agents.keys()]).toEqual(['node-a', 'node-b', 'node-c']);

  const vips = new Map<string, string>();
  const hops = new Map<string, string[]>();
  for (const m of step(out, 4).matchAll(
    /^\s+(web|edge)\s+(?:Cluster|Local)\s+(\d+\.\d+\.\d+\.\d+)\s+.*?\s{2}((?:\d+\.\d+\.\d+\.\d+ \(node-[a-c]\)(?:, )?)+)$/gm,
  )) {
    vips.set(m[1]!, m[2]!);
    hops.set(m[1]!, [...m[3]!.matchAll(/(\d+\.\d+\.\d+\.\d+) \(/g)].map((x) => x[1]!).sort());
  }
  expect([...vips.keys()].sort()).toEqual(['edge', 'web']);

  // The addresses printed are the ones the surviving agents serve and the router routes.
  for (const node of ['node-a', 'node-b']) {
    const status = await agentStatus(agents.get(node)!);
    const frontends = status.services.flatMap((s) => s.frontends);
    for (const vip of vips.values()) expect(frontends).toContain(`${vip}:80/TCP`);
  }
  // node-c died in step 7: its agent no longer answers.
  await expect(agentStatus(agents.get('node-c')!)).rejects.toThrow();

  // Local: unchanged since step 4. Cluster: what step 7 printed after node-c went.
  expect(routerHops(tag, vips.get('edge')!)).toEqual(hops.get('edge'));
  expect(hops.get('web')).toHaveLength(3);
  const now = /now ->\s+(.+)$/m.exec(step(out, 7))![1]!;
  const printedNow = [...now.matchAll(/(\d+\.\d+\.\d+\.\d+) \(/g)].map((x) => x[1]!).sort();
  expect(printedNow).toHaveLength(2);
  expect(routerHops(tag, vips.get('web')!)).toEqual(printedNow);

  // The pods the demo said answered at the end are the ones that answer now, each seeing the client.
  const lastRound = step(out, 7).slice(step(out, 7).lastIndexOf('new requests:'));
  const web = askFromClient(tag, vips.get('web')!, 60);
  expect(web.pods).toEqual(podsAnswering(lastRound));
  expect(web.clients).toEqual([BED.client.v4]);
  const edge = askFromClient(tag, vips.get('edge')!, 30);
  expect(edge.pods).toEqual(podsAnswering(step(out, 5)).filter((p) => p.startsWith('edge-')));
  expect(out).toContain(`client address preserved: yes (${BED.client.v4} seen by every pod)`);

  return { printed: { tag, vips, agents }, out };
}

async function interruptAndCheck(printed: Printed): Promise<void> {
  const inside = pidsInNamespaces(printed.tag);
  // BIRD, 8 pods, the probes of the open connections: the check below can fail.
  expect(inside.length).toBeGreaterThan(8);
  demo!.signal('SIGINT');
  expect(await demo!.exited).toBe(0);
  expect(demo!.out).toMatch(/\[9\/9\] cleaning up.* done/);
  expectNothingLeft(printed.tag, demo!.out, inside);
}

describe('xlb demo (the main job)', () => {
  beforeAll(() => {
    requirePrivileges('demo');
    expect(existsSync(cli), `${cli} is missing: run the set-up command (scripts/setup.sh)`).toBe(
      true,
    );
  });

  it('standalone: what it printed holds against the agents, the router and the pods; Ctrl-C cleans up and exits 0', async () => {
    // What a demo killed outright leaves: a namespace, a pin dir, its state file and temp dir.
    const deadPid = spawnSync('true').pid;
    const staleTemp = mkdtempSync(join(tmpdir(), 'xlb-demo-stale-'));
    spawnSync('ip', ['netns', 'add', 'xlbdemo-0fffff-stale']);
    mkdirSync('/sys/fs/bpf/xlbdemo-0fffff-node-a');
    mkdirSync(STATE_DIR, { recursive: true });
    writeFileSync(
      join(STATE_DIR, `${deadPid}.json`),
      JSON.stringify({ pid: deadPid, tag: '0fffff', tempDir: staleTemp }),
    );

    const { printed, out } = await holdAndCheck([]);
    expect(out).toContain(
      `an earlier demo left things behind; removed: 1 network namespace(s), 1 BPF pin dir(s), temp dir ${staleTemp}`,
    );
    expect(netnsList()).not.toContain('xlbdemo-0fffff-stale');
    expect(existsSync('/sys/fs/bpf/xlbdemo-0fffff-node-a')).toBe(false);
    expect(existsSync(staleTemp)).toBe(false);
    await interruptAndCheck(printed);
  }, 150_000);

  it('refuses while another demo runs, naming its pid, and touches nothing of it', async () => {
    // A live process that looks like a demo on its command line, recorded as one.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', 'demo'], {
      stdio: 'ignore',
    });
    try {
      mkdirSync(STATE_DIR, { recursive: true });
      writeFileSync(join(STATE_DIR, `${other.pid}.json`), JSON.stringify({ pid: other.pid }));
      spawnSync('ip', ['netns', 'add', 'xlbdemo-0eeeee-busy']);
      demo = new DemoProcess([]);
      expect(await demo.exited).toBe(1);
      expect(demo.err).toContain(`another xlb demo is running (pid ${other.pid})`);
      expect(netnsList()).toContain('xlbdemo-0eeeee-busy');
    } finally {
      other.kill('SIGKILL');
      spawnSync('ip', ['netns', 'del', 'xlbdemo-0eeeee-busy']);
    }
  });

  it('--kube: the leader allocates the addresses, kubectl shows the ones printed', async () => {
    const { printed, out } = await holdAndCheck(['--kube', '--pods', '4']);
    const kubeconfig = /--kubeconfig (\S+) get svc/.exec(out)![1]!;
    const kubectl = await childOutput(
      spawn(
        kubectlPath,
        [
          '--kubeconfig',
          kubeconfig,
          'get',
          'svc',
          '-n',
          'xlb-demo',
          '--cache-dir',
          join(kubeconfig, '..', 'kube-home', 'cache'),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    expect(kubectl.code, kubectl.stderr).toBe(0);
    const got = kubectl.stdout;
    for (const [name, vip] of printed.vips)
      expect(got).toMatch(
        new RegExp(`^${name}\\s+LoadBalancer\\s+\\S+\\s+${vip.replaceAll('.', '\\.')}\\s`, 'm'),
      );
    expect(out).toContain('allocated by the leader, in Service status');
    await interruptAndCheck(printed);
  }, 150_000);

  it('Ctrl-C half-way (while the agents start) removes everything it had built', async () => {
    demo = new DemoProcess([]);
    await demo.waitFor(/starting BIRD and 3 agents/, 60_000);
    const tag = /namespaces: xlbdemo-([0-9a-f]{6})-\*/.exec(demo.out)![1]!;
    // It had built something: the check below could fail.
    expect(netnsList().filter((n) => n.includes(tag)).length).toBeGreaterThan(5);
    const inside = pidsInNamespaces(tag);
    expect(inside.length).toBeGreaterThan(0);
    demo.signal('SIGINT');
    expect(await demo.exited).toBe(130);
    expect(demo.out).toContain('cleaning up, please wait');
    expect(demo.out).toMatch(/\[9\/9\] cleaning up.* done/);
    expect(demo.out).not.toContain('[4/9]');
    expectNothingLeft(tag, demo.out, inside);
  }, 90_000);

  it('output closed half-way (`xlb demo | head`) removes everything it had built', async () => {
    demo = new DemoProcess([]);
    await demo.waitFor(/starting BIRD and 3 agents/, 60_000);
    const tag = /namespaces: xlbdemo-([0-9a-f]{6})-\*/.exec(demo.out)![1]!;
    const inside = pidsInNamespaces(tag);
    expect(inside.length).toBeGreaterThan(0);
    const before = demo.out;
    demo.closeOutput();
    // 128 + SIGPIPE, once its next write meets the closed pipe.
    expect(await demo.exited).toBe(141);
    expectNothingLeft(tag, before, inside);
  }, 90_000);

  it('runs to the end under Node 24, the Node of the container image: every check holds', async () => {
    expect(existsSync(node24), `${node24} is missing: run scripts/setup.sh`).toBe(true);
    demo = new DemoProcess(['--pods', '4'], node24);
    expect(await demo.exited, demo.out + demo.err).toBe(0);
    expect(demo.out).toMatch(/all \d+ checks held/);
    expect(demo.out).toMatch(/\[9\/9\] cleaning up.* done/);
  }, 120_000);

  it('rejects a --pods it cannot place, with exit code 2, before building anything', () => {
    for (const pods of ['3', '31', 'six']) {
      const r = spawnSync(process.execPath, [cli, 'demo', '--pods', pods], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toBe(
        `xlb demo: --pods must be a whole number from 4 to 30, not '${pods}'\n`,
      );
      expect(r.stdout).toBe('');
    }
  });

  it('refuses to run without root, saying why, and builds nothing', () => {
    const before = netnsList().filter((n) => n.startsWith('xlbdemo-'));
    const r = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cli, 'demo'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(ROOT_MESSAGE);
    expect(netnsList().filter((n) => n.startsWith('xlbdemo-'))).toEqual(before);
  });
});
