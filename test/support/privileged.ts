// Tests that load BPF or build namespaces call this first. Without root they
// fail with one clear line; they never skip, so CI cannot pass by accident.
import { ensureBpffs } from '../../control/system/bpffs.js';
import { requireRoot } from '../../control/system/privileges.js';

export function requirePrivileges(suite: string): void {
  requireRoot(`the test suite '${suite}'`);
  ensureBpffs();
}
