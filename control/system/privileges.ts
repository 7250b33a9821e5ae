// What xlb needs from the machine before it can touch the datapath, checked
// up front so users get one clear sentence instead of an EPERM deep inside.
export class PrivilegeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrivilegeError';
  }
}

/** Throws PrivilegeError unless running as root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN). */
export function requireRoot(what: string): void {
  if (typeof process.getuid === 'function' && process.getuid() === 0) return;
  throw new PrivilegeError(
    `${what} needs root (CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN to load BPF programs and ` +
      'create network namespaces): run it as root, e.g. with sudo',
  );
}
