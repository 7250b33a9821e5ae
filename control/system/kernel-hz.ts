// The kernel's tick rate (CONFIG_HZ). The datapath ages its flow cache and
// next hops in jiffies, because reading jiffies costs nothing in BPF while
// any clock helper costs a function call per packet.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';

/**
 * What to assume when the kernel's configuration is not readable: the
 * lowest rate Linux offers. Guessing low only makes cached verdicts expire
 * sooner than a second (more full-path packets), never later.
 */
export const FALLBACK_HZ = 100;

export interface KernelHz {
  hz: number;
  /** Where the value came from, for the agent's start-up log. */
  source: string;
}

/** CONFIG_HZ from the text of a kernel configuration, or undefined. */
export function parseConfigHz(config: string): number | undefined {
  const m = /^CONFIG_HZ=(\d+)$/m.exec(config);
  if (!m) return undefined;
  const hz = Number(m[1]);
  return hz >= 24 && hz <= 10_000 ? hz : undefined;
}

function tryRead(path: string, gzip: boolean): string | undefined {
  try {
    const raw = readFileSync(path);
    return (gzip ? gunzipSync(raw) : raw).toString('utf8');
  } catch {
    return undefined;
  }
}

export function kernelHz(): KernelHz {
  const candidates: Array<[string, boolean]> = [
    ['/proc/config.gz', true],
    [`/boot/config-${release()}`, false],
  ];
  for (const [path, gzip] of candidates) {
    const text = tryRead(path, gzip);
    const hz = text === undefined ? undefined : parseConfigHz(text);
    if (hz !== undefined) return { hz, source: path };
  }
  return { hz: FALLBACK_HZ, source: 'fallback: no readable kernel configuration' };
}
