import { addon } from './addon.js';

/**
 * Runs fn with the calling thread inside the named network namespace (as made
 * by `ip netns add`), then returns to the original one, also on error.
 * fn must be synchronous: setns() moves only this thread, and the event loop
 * must not run callbacks while it is elsewhere.
 */
export function inNetns<T>(name: string, fn: () => T): T {
  if (name.includes('/')) throw new RangeError(`network namespace name '${name}' contains '/'`);
  const back = addon().netnsEnter(`/run/netns/${name}`);
  try {
    const result = fn();
    if (result instanceof Promise) {
      throw new TypeError('inNetns() takes a synchronous function');
    }
    return result;
  } finally {
    addon().netnsRestore(back);
  }
}
