#!/usr/bin/env node
// The xlb command line.
import { Command } from 'commander';

import { registerAgentCommand } from '../agent/index.js';
import { runCountersDemo } from '../demo/counters-demo.js';
import { registerExplainCommand } from '../explain/command.js';
import { registerStatusCommand } from '../status/command.js';
import { configureLogging } from '../observe/log.js';
import { libbpfVersion } from '../../native/index.js';

const program = new Command('xlb')
  .description('Bare-metal load balancer for Kubernetes LoadBalancer Services')
  .version('0.1.0');

program
  .command('demo')
  .description(
    'build two network namespaces, run the XDP datapath on a veth, send real traffic, show the counters',
  )
  .action(async () => {
    configureLogging({ level: 'warn' });
    const result = await runCountersDemo((line) => console.log(line));
    if (result.shortfalls.length > 0) process.exitCode = 1;
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
