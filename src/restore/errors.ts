// A restore that cannot go on: the message is the one line the user sees.

export class RestoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreError';
  }
}
