// Every failure that can reach a user carries an errno: the FUSE boundary answers with it and
// the CLI prints the message.

import { constants } from 'node:os';

export class ImgfsError extends Error {
  readonly errno: number;
  constructor(errno: number, message: string) {
    super(message);
    this.name = 'ImgfsError';
    this.errno = errno;
  }
}

export const Errno = constants.errno;

/** The positive errno a failure stands for: ours, the native layer's, or Node's fs errors. */
export function errnoOf(err: unknown): number {
  const errno = (err as { errno?: unknown } | null)?.errno;
  if (typeof errno === 'number' && errno !== 0) return Math.abs(errno);
  return Errno.EIO;
}
