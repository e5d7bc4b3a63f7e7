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

/**
 * The message of a failed file call, without Node's ", open '<path>'" (the caller names the file);
 * undefined for any other error. ENOTCONN, which Node words for sockets, is what a FUSE mount
 * whose server is gone answers: said so.
 */
export function fileErrorMessage(err: unknown): string | undefined {
  if (!(err instanceof Error) || typeof (err as NodeJS.ErrnoException).syscall !== 'string') return undefined;
  if ((err as NodeJS.ErrnoException).code === 'ENOTCONN') return 'ENOTCONN: transport endpoint is not connected (a FUSE mount whose server is gone)';
  return err.message.replace(/, \w+ '.*'$/, '');
}

/** The positive errno a failure stands for: ours, the native layer's, or Node's fs errors. */
export function errnoOf(err: unknown): number {
  const errno = (err as { errno?: unknown } | null)?.errno;
  if (typeof errno === 'number' && errno !== 0) return Math.abs(errno);
  return Errno.EIO;
}
