// A restore that cannot go on: the message is the one line the user sees.

export class RestoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreError';
  }
}

/** How a restore that a signal abandoned ends: "interrupted by SIGTERM". */
export function interrupted(signal: AbortSignal): RestoreError {
  return new RestoreError(`interrupted by ${String(signal.reason)}`);
}
