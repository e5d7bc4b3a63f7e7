/** A mistake in the command line: the CLI says it in one line and exits with 2. */
export class UsageError extends Error {}
