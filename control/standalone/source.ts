// Runs xlb without Kubernetes: a directory of manifest files is the cluster.
// Every change in the directory triggers a full rescan (editors and config
// managers replace files by rename, ConfigMap volumes swap a symlinked
// directory), and the store gets the whole state with replaceAll. A file
// that stops being valid keeps contributing what it last did when valid, so
// a typo during an edit never withdraws a live Service.
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { logger, type Logger } from '../observe/log.js';
import type { ClusterStore } from '../store/cluster-store.js';

import {
  DEFAULT_SECRET_NAMESPACE,
  parseManifests,
  type ManifestObject,
  type ManifestProblem,
} from './manifests.js';
import { countObjects, mergeContributions } from './merge.js';

export interface StandaloneSourceOptions {
  directory: string;
  store: ClusterStore;
  /** Quiet time after the last file event before rescanning; default 50 ms. */
  debounceMs?: number;
  /**
   * The agent's own namespace (its --lease-namespace): Secret manifests
   * without a namespace are in it, others are skipped. Default xlb-system.
   */
  secretNamespace?: string;
  log?: Logger;
}

export class StandaloneSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StandaloneSourceError';
  }
}

// Dot files are editor droppings (.#x.yaml lock links, .x.yaml.swp) and the
// ..data links of ConfigMap volumes; the real files have plain names.
export function isManifestFileName(name: string): boolean {
  return !name.startsWith('.') && /\.ya?ml$/.test(name);
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function problemId(p: ManifestProblem): string {
  return JSON.stringify([p.file, p.document, p.code, p.reason]);
}

const WHAT_HAPPENS: Record<ManifestProblem['code'], string> = {
  invalidYaml: 'file ignored: the objects it last defined while valid stay in effect',
  invalidObject: 'file ignored: the objects it last defined while valid stay in effect',
  unreadable: 'file ignored: the objects it last defined while valid stay in effect',
  unknownKind: 'document skipped: xlb does not read this kind',
  duplicate: 'definition ignored: an earlier file defines the same object',
  foreignSecret: "document skipped: xlb reads Secrets only in the agent's own namespace",
};

export class StandaloneSource {
  private readonly directory: string;
  private readonly store: ClusterStore;
  private readonly debounceMs: number;
  private readonly secretNamespace: string;
  private readonly log: Logger;
  /** What each file last contributed while valid. */
  private readonly lastGood = new Map<string, readonly ManifestObject[]>();
  private problems: readonly ManifestProblem[] = [];
  /** Set once the watch fails; stays listed, whatever later scans find. */
  private watchProblem: ManifestProblem | undefined;
  private readonly problemListeners = new Set<(problems: readonly ManifestProblem[]) => void>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Scans run one at a time; `queued` is the one not started yet, if any. */
  private chain: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;
  private started = false;
  private stopped = false;

  constructor(options: StandaloneSourceOptions) {
    this.directory = options.directory;
    this.store = options.store;
    this.debounceMs = options.debounceMs ?? 50;
    this.secretNamespace = options.secretNamespace ?? DEFAULT_SECRET_NAMESPACE;
    this.log = options.log ?? logger('standalone');
  }

  /** Watches the directory and loads it; resolves once the store holds the first snapshot. */
  async start(): Promise<void> {
    if (this.started) throw new StandaloneSourceError('this standalone source was already started');
    this.started = true;
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(this.directory)).isDirectory();
    } catch (err) {
      throw new StandaloneSourceError(
        `cannot read the manifest directory ${this.directory}: ${(err as Error).message}`,
      );
    }
    if (!isDirectory)
      throw new StandaloneSourceError(
        `${this.directory} is not a directory: standalone mode reads a directory of *.yaml files`,
      );
    // Watch before the first scan, so a change during it is not missed.
    this.watcher = watch(this.directory, { persistent: true }, () => this.onFileEvent());
    this.watcher.on('error', (err) => this.onWatchError(err));
    try {
      await this.scan(true);
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.log.info(
      { directory: this.directory, files: this.lastGood.size, problems: this.problems.length },
      'standalone manifests loaded',
    );
  }

  /** Stops watching; resolves when no scan is running. The store keeps its content. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
    await this.chain;
  }

  /** Rescans now (e.g. on SIGHUP); resolves when the store holds the result. */
  rescan(): Promise<void> {
    return this.scan(false);
  }

  /** The problems of the last scan: every file, document and reason not in effect. */
  errors(): readonly ManifestProblem[] {
    return this.problems;
  }

  /** `listener` runs after each scan that changed the list of problems. Returns the unsubscribe. */
  onProblems(listener: (problems: readonly ManifestProblem[]) => void): () => void {
    this.problemListeners.add(listener);
    return () => this.problemListeners.delete(listener);
  }

  private onFileEvent(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.scan(false).catch((err: unknown) =>
        this.log.error({ err, directory: this.directory }, 'standalone rescan failed'),
      );
    }, this.debounceMs);
  }

  private onWatchError(err: Error): void {
    // The watch is gone (e.g. the directory was removed): the state stays as
    // last read, and the problem says why it no longer follows the files.
    this.log.error({ err, directory: this.directory }, 'stopped watching the manifest directory');
    this.watcher?.close();
    this.watcher = undefined;
    this.watchProblem = {
      file: this.directory,
      document: undefined,
      line: undefined,
      code: 'unreadable',
      reason: `no longer watching for changes: ${err.message}; restart xlb to resume`,
    };
    this.setProblems([...this.problems, this.watchProblem]);
  }

  /** Queues a scan after the running one; bursts share one queued scan. */
  private scan(first: boolean): Promise<void> {
    if (this.queued !== undefined) return this.queued;
    const run = this.chain.then(() => {
      this.queued = undefined;
      return this.scanOnce(first);
    });
    this.queued = run;
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async scanOnce(first: boolean): Promise<void> {
    if (this.stopped) return;
    let names: string[];
    try {
      names = (await readdir(this.directory)).filter(isManifestFileName).sort();
    } catch (err) {
      const reason = `cannot read the directory: ${(err as Error).message}`;
      if (first) throw new StandaloneSourceError(`${this.directory}: ${reason}`);
      if (this.stopped) return;
      const problem: ManifestProblem = {
        file: this.directory,
        document: undefined,
        line: undefined,
        code: 'unreadable',
        reason: `${reason}; keeping the objects read before`,
      };
      this.setProblems(this.watchProblem ? [problem, this.watchProblem] : [problem]);
      return;
    }
    const problems: ManifestProblem[] = [];
    const present = new Set<string>();
    for (const name of names) {
      const path = join(this.directory, name);
      let text: string;
      try {
        if (!(await stat(path)).isFile()) continue;
        text = await readFile(path, 'utf8');
      } catch (err) {
        // Gone since readdir, or a dangling link: as if it was never there.
        if (errno(err) === 'ENOENT') continue;
        present.add(name);
        problems.push({
          file: name,
          document: undefined,
          line: undefined,
          code: 'unreadable',
          reason: (err as Error).message,
        });
        continue;
      }
      present.add(name);
      const parsed = parseManifests(name, text, { secretNamespace: this.secretNamespace });
      problems.push(...parsed.problems);
      if (parsed.usable) this.lastGood.set(name, parsed.objects);
    }
    for (const name of [...this.lastGood.keys()])
      if (!present.has(name)) this.lastGood.delete(name);
    const merged = mergeContributions(
      [...this.lastGood].map(([file, objects]) => ({ file, objects })),
      this.secretNamespace,
    );
    problems.push(...merged.problems);
    if (this.stopped) return;
    this.store.replaceAll(merged.snapshot);
    this.log.debug(
      { directory: this.directory, files: present.size, objects: countObjects(merged.snapshot) },
      'standalone manifests scanned',
    );
    if (this.watchProblem !== undefined) problems.push(this.watchProblem);
    this.setProblems(problems);
  }

  private setProblems(next: readonly ManifestProblem[]): void {
    const before = new Set(this.problems.map(problemId));
    const after = new Set(next.map(problemId));
    // Log each problem once, when it appears, not on every rescan.
    for (const p of next) {
      if (before.has(problemId(p))) continue;
      const fields = {
        file: p.file,
        document: p.document,
        line: p.line,
        code: p.code,
        reason: p.reason,
      };
      if (p.file === this.directory)
        this.log.warn(fields, 'manifest directory problem: the objects read before stay in effect');
      else this.log.warn(fields, `invalid manifest, ${WHAT_HAPPENS[p.code]}`);
    }
    const stillBad = new Set(next.map((p) => p.file));
    for (const file of new Set(this.problems.map((p) => p.file)))
      if (!stillBad.has(file)) this.log.info({ file }, 'manifest problems resolved');
    const changed = before.size !== after.size || [...after].some((id) => !before.has(id));
    this.problems = next;
    if (!changed) return;
    for (const listener of [...this.problemListeners]) listener(next);
  }
}
