// `xlb explain CLIENT:PORT VIP:PORT/PROTO`: registered on the xlb command.
import type { Command } from 'commander';

import { DEFAULT_PIN_DIR } from '../datapath/lifecycle.js';
import { FlowInputError, parseFlow } from './flow.js';
import { PinnedDatapath, PinnedDatapathError } from './pinned.js';
import { explainPinned } from './reader.js';
import { explanationJson, renderExplanation } from './render.js';

/** Exit codes: 2 for input the command cannot use, 1 when there is no datapath to read. */
export const EXIT_BAD_INPUT = 2;
export const EXIT_NO_DATAPATH = 1;

export function registerExplainCommand(program: Command): void {
  program
    .command('explain')
    .description(
      'which backend a flow goes to and why (connection table, session affinity, Maglev slot, ' +
        'source ranges, no backend), read from the datapath pinned on this node',
    )
    .argument('<client>', 'the client: ADDRESS:PORT ([ADDRESS]:PORT for IPv6)')
    .argument('<destination>', 'the VIP: ADDRESS:PORT/PROTO, PROTO TCP or UDP')
    .option('--pin-dir <dir>', 'where the datapath is pinned', DEFAULT_PIN_DIR)
    .option('--json', 'print the explanation as JSON')
    .action((client: string, destination: string, opts: { pinDir: string; json?: boolean }) => {
      let flow;
      try {
        flow = parseFlow(client, destination);
      } catch (e) {
        if (!(e instanceof FlowInputError)) throw e;
        console.error(`xlb explain: ${e.message}`);
        process.exitCode = EXIT_BAD_INPUT;
        return;
      }
      let dp: PinnedDatapath;
      try {
        dp = PinnedDatapath.open(opts.pinDir);
      } catch (e) {
        if (!(e instanceof PinnedDatapathError)) throw e;
        console.error(`xlb explain: ${e.message}`);
        process.exitCode = EXIT_NO_DATAPATH;
        return;
      }
      try {
        const e = explainPinned(dp, flow);
        console.log(opts.json ? explanationJson(e) : renderExplanation(e).join('\n'));
      } finally {
        dp.close();
      }
    });
}
