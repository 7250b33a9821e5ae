// The addon throws plain Errors with errno, code, libbpfLog and (for verifier
// rejections) verifierLog attached; this type lets callers match on them.
export interface BpfError extends Error {
  errno: number;
  code: string;
  libbpfLog: string;
  verifierLog?: string;
}

export function isBpfError(e: unknown): e is BpfError {
  return e instanceof Error && typeof (e as Partial<BpfError>).errno === 'number';
}

export function isErrno(e: unknown, code: string): boolean {
  return isBpfError(e) && e.code === code;
}
