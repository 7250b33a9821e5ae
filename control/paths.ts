// Where the project's build outputs live, found from this file's location so
// the same code works from the TypeScript sources (vitest) and from dist/.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedRoot: string | undefined;

export function projectRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string };
      if (pkg.name === 'xlb') return (cachedRoot = dir);
    }
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error('cannot find the xlb project root above ' + import.meta.url);
    dir = parent;
  }
}

/** Path of a compiled BPF object, e.g. bpfObjectPath('xlb_xdp') or ('test/fixture'). */
export function bpfObjectPath(name: string): string {
  return join(projectRoot(), 'bpf', 'build', `${name}.o`);
}

export function nativeAddonPath(): string {
  return join(projectRoot(), 'native', 'build', 'Release', 'xlb_native.node');
}

/**
 * A compiled program of xlb's own that runs in another process (inside a
 * network namespace): always from dist/, also when the caller is the
 * TypeScript source under vitest.
 */
export function distScript(relative: string): string {
  return join(projectRoot(), 'dist', relative);
}
