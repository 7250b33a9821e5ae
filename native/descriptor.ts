import { addon } from './addon.js';

/**
 * A kernel object reached through one file descriptor that this process owns.
 * The descriptor is released by close() (or `using`), never by the garbage
 * collector: an agent that leaks descriptors keeps maps and programs alive in
 * the kernel long after it stopped using them.
 */
export abstract class Descriptor implements Disposable {
  #fd: number;

  protected constructor(fd: number) {
    this.#fd = fd;
  }

  get fd(): number {
    if (this.#fd < 0) throw new Error(`${this.constructor.name} is closed`);
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Pins the object at a path under a BPF filesystem (e.g. /sys/fs/bpf/xlb/...). */
  pin(path: string): void {
    addon().objPin(this.fd, path);
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    addon().closeFd(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
