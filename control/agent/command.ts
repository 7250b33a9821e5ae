// `xlb agent`: settings, preflight, signals and exit codes around Agent.
// Exit codes: 0 stopped on request (or uninstalled), 1 could not start or
// run, 2 invalid settings.
import type { Command } from 'commander';

import { configureLogging, logger } from '../observe/log.js';
import { preflight } from '../system/preflight.js';

import { Agent } from './agent.js';
import {
  AGENT_OPTIONS,
  AgentConfigError,
  readConfigFile,
  resolveAgentSettings,
  resolveUninstallSettings,
  SETTING_KEYS,
  type SettingKey,
} from './config.js';
import { datapathPort } from './datapath.js';
import type { DatapathPort } from './ports.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

const HELP_AFTER = `
Settings come from the flags, then the --config file, then the defaults. The
config file is a YAML map with the keys
  ${SETTING_KEYS.join(', ')}
(e.g. hashSeed: 0x1234); a relative manifests path is relative to the file.

SIGTERM or SIGINT stops the agent and leaves the datapath attached and pinned,
so traffic keeps flowing and the next agent adopts it without a gap; with
--bgp-stop graceful (the default) BGP peers that negotiated graceful restart
keep the routes meanwhile, the others get a withdrawal. A second signal exits
at once. SIGHUP reads the manifest directory again.
--uninstall detaches and unpins everything instead (needs --uplink, --netns
and --pin-dir as the agent ran with).

Exit codes: 0 stopped on request, 1 could not start, 2 invalid settings.`;

interface AgentCommandOptions {
  config?: string;
  uninstall?: boolean;
  [flag: string]: unknown;
}

export function registerAgentCommand(
  program: Command,
  datapath: DatapathPort = datapathPort,
): void {
  const cmd = program
    .command('agent')
    .description(
      "run this node's control plane: the Kubernetes API (or, with --manifests, a directory of manifests) -> the XDP datapath on the uplink",
    )
    .option('-c, --config <file>', 'YAML file of settings (keys below)');
  for (const o of AGENT_OPTIONS) {
    cmd.option(o.flags, o.description);
    if (o.key === 'defaultClass')
      cmd.option(
        '--no-default-class',
        'only serve Services that name our class (overrides the file)',
      );
  }
  cmd
    .option(
      '--uninstall',
      'detach the datapath from the uplink, unpin everything under --pin-dir, and exit',
    )
    .addHelpText('after', HELP_AFTER)
    .action(async (opts: AgentCommandOptions) => {
      process.exitCode = await runAgentCommand(cmd, opts, datapath);
    });
}

function flagValues(cmd: Command, opts: AgentCommandOptions): Partial<Record<SettingKey, unknown>> {
  const out: Partial<Record<SettingKey, unknown>> = {};
  for (const spec of AGENT_OPTIONS) {
    const option = cmd.options.find((o) => o.flags === spec.flags);
    const attribute = option?.attributeName() ?? spec.key;
    if (opts[attribute] !== undefined) out[spec.key] = opts[attribute];
  }
  return out;
}

async function runAgentCommand(
  cmd: Command,
  opts: AgentCommandOptions,
  datapath: DatapathPort,
): Promise<number> {
  try {
    const file = opts.config === undefined ? undefined : readConfigFile(opts.config);
    const input = { flags: flagValues(cmd, opts), ...(file ? { file } : {}) };
    if (opts.uninstall === true) {
      const settings = resolveUninstallSettings(input);
      configureLogging({ level: settings.logLevel });
      preflight('xlb agent --uninstall', ['ip']);
      const report = await datapath.uninstall({
        pinDir: settings.pinDir,
        netns: settings.netns,
        uplink: settings.uplink,
      });
      for (const line of report.removed) console.log(line);
      console.log(
        report.removed.length === 0
          ? `xlb: nothing to uninstall: no xlb datapath on ${settings.uplink} and nothing pinned at ${settings.pinDir}`
          : `xlb: uninstalled from ${settings.uplink}; ${settings.pinDir} is gone`,
      );
      return EXIT_OK;
    }
    const settings = resolveAgentSettings(input);
    configureLogging({ level: settings.logLevel });
    preflight('xlb agent', ['ip']);
    return await runAgent(new Agent(settings, { datapath }));
  } catch (e) {
    console.error(`xlb agent: ${(e as Error).message}`);
    return e instanceof AgentConfigError ? EXIT_USAGE : EXIT_FAILED;
  }
}

async function runAgent(agent: Agent): Promise<number> {
  const log = logger('agent');
  let stopRequested = false;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopRequested) {
      log.warn({ signal }, 'second signal: exiting at once');
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    stopRequested = true;
    log.info({ signal }, 'signal received');
    agent.stop().then(resolveStopped, resolveStopped);
  };
  const onHangup = (): void => {
    log.info('SIGHUP: reading the manifest directory again');
    void agent.rescan();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onHangup);
  try {
    try {
      await agent.start();
    } catch (e) {
      if (stopRequested) {
        await stopped;
        return EXIT_OK;
      }
      log.fatal({ err: e }, `cannot start: ${(e as Error).message}`);
      throw e;
    }
    await stopped;
    return EXIT_OK;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('SIGHUP', onHangup);
  }
}
