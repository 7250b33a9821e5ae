#!/usr/bin/env node
// The xlb command line.
import { Command } from 'commander';

import { registerAgentCommand } from '../agent/index.js';
import { runDemo } from '../demo/run.js';
import { DEFAULTS, MAX_WEB_PODS, MIN_WEB_PODS } from '../demo/scenario.js';
import { registerExplainCommand } from '../explain/command.js';
import { registerStatusCommand } from '../status/command.js';
import { libbpfVersion } from '../../native/index.js';

const program = new Command('xlb')
  .description('Bare-metal load balancer for Kubernetes LoadBalancer Services')
  .version('0.1.0');

program
  .command('demo')
  .description(
    "a cluster's whole load-balancing path on this machine: a client, a BGP router (BIRD, ECMP), 3 nodes running xlb agents with the XDP datapath, pods; then a pod and a node go away",
  )
  .option(
    '--kube',
    'the agents use the Kubernetes API (an API server double on 127.0.0.1, kubectl works against it) instead of a manifest directory',
  )
  .option('--hold', 'after the summary, keep everything running to look around, until Ctrl-C')
  .option(
    '--pods <n>',
    `pods of the Cluster Service 'web', spread over the nodes (${MIN_WEB_PODS}-${MAX_WEB_PODS})`,
    String(DEFAULTS.webPods),
  )
  .addHelpText(
    'after',
    '\nNeeds root (network namespaces, XDP). Cleans up after itself, also on Ctrl-C.\nExit codes: 0 every check held, 1 a check failed or the demo could not run, 2 invalid options, 130 interrupted.',
  )
  .action(async (opts: { kube?: boolean; hold?: boolean; pods: string }) => {
    const webPods = Number(opts.pods);
    if (!Number.isInteger(webPods) || webPods < MIN_WEB_PODS || webPods > MAX_WEB_PODS) {
      console.error(
        `xlb demo: --pods must be a whole number from ${MIN_WEB_PODS} to ${MAX_WEB_PODS}, not '${opts.pods}'`,
      );
      process.exitCode = 2;
      return;
    }
    process.exitCode = await runDemo(
      { kube: opts.kube === true, hold: opts.hold === true, webPods },
      (text) => process.stdout.write(text),
      (text) => process.stderr.write(text),
    );
  });

registerAgentCommand(program);
registerExplainCommand(program);
registerStatusCommand(program);

program
  .command('versions')
  .description('print the versions of the pieces xlb runs on')
  .action(() => {
    console.log(`node ${process.versions.node}\nlibbpf ${libbpfVersion()}`);
  });

try {
  await program.parseAsync();
} catch (e) {
  console.error(`xlb: ${(e as Error).message}`);
  process.exitCode = 1;
}
