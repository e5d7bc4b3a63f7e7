// Every failure of the native layer is a NativeError: the FUSE layer answers with its errno, so
// the errno must be the one that describes the failure, and the message must name the call.

import { constants } from 'node:os';

const namesByErrno = new Map<number, string>(
  Object.entries(constants.errno).map(([name, errno]) => [errno, name]),
);

/** 'ESRCH' for 3; 'E<n>' for a number the platform has no name for. */
function errnoName(errno: number): string {
  return namesByErrno.get(errno) ?? `E${errno}`;
}

export class NativeError extends Error {
  /** Positive, e.g. 3 for ESRCH. */
  readonly errno: number;
  /** The errno's name, e.g. 'ESRCH'. */
  readonly code: string;
  /** What failed, e.g. 'ptrace(PTRACE_SEIZE, 1234)'. */
  readonly call: string;

  /** description: the errno's text (strerror), optionally followed by details. */
  constructor(errno: number, call: string, description: string) {
    super(`${call}: ${description}`);
    this.name = 'NativeError';
    this.errno = errno;
    this.code = errnoName(errno);
    this.call = call;
  }
}
