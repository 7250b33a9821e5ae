// A pause that an AbortSignal cuts short, rejecting with the signal's own
// reason (node:timers/promises rejects with a generic AbortError instead,
// which would hide why the caller was stopped).

/** Resolves after `ms`, or rejects with `signal.reason` at once when it aborts. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
