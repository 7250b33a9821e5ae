// The one pino logger of the process. Components take a child with their
// name, so every line says where it came from:
//   {"level":"info","time":"...","component":"datapath","msg":"..."}
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

interface LogSettings {
  level: LevelWithSilent;
  destination?: DestinationStream;
}

const envLevel = process.env.XLB_LOG_LEVEL as LevelWithSilent | undefined;
let settings: LogSettings = { level: envLevel ?? 'info' };
let root: Logger | undefined;

function rootLogger(): Logger {
  root ??= pino(
    {
      name: 'xlb',
      level: settings.level,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    settings.destination ?? pino.destination({ fd: 1, sync: true }),
  );
  return root;
}

/**
 * Sets level and destination. Call before the first logger() call that
 * should see them (the CLI does, at start); loggers made earlier keep theirs.
 */
export function configureLogging(next: Partial<LogSettings>): void {
  settings = { ...settings, ...next };
  root = undefined;
}

export function logger(component: string): Logger {
  return rootLogger().child({ component });
}
