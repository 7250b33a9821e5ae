import { readdirSync } from 'node:fs';

/** Descriptors this process holds right now. */
export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}
