// `xlb status`: registered on the xlb command.
import type { Command } from 'commander';

import { DEFAULT_PIN_DIR } from '../datapath/lifecycle.js';
import { collectStatus } from './collect.js';
import { renderStatus } from './render.js';

export const DEFAULT_AGENT_URL = 'http://127.0.0.1:9597';

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description(
      "services, VIPs, backends with their state and counters from this node's pinned datapath, " +
        "and the agent's view (readiness, leadership, decisions, BGP sessions) when it answers",
    )
    .option('--pin-dir <dir>', 'where the datapath is pinned', DEFAULT_PIN_DIR)
    .option('--agent <url>', "the agent's metrics address", DEFAULT_AGENT_URL)
    .option('--no-agent', 'read the pinned maps only')
    .option('--json', 'print the status as JSON')
    .action(async (opts: { pinDir: string; agent: string | false; json?: boolean }) => {
      const status = await collectStatus({
        pinDir: opts.pinDir,
        ...(opts.agent === false ? {} : { agentUrl: opts.agent }),
      });
      console.log(opts.json ? JSON.stringify(status, null, 2) : renderStatus(status).join('\n'));
      // Nothing to show at all is a failure; one view missing is reported, not fatal.
      if (status.datapath === undefined && status.agent === undefined) process.exitCode = 1;
    });
}
