// The signals imgfs was started with ignored. Node sets every signal back to its default action
// as it starts, so bin/imgfs passes on the mask it had (/proc/<pid>/status SigIgn, in hex) in
// IMGFS_IGNORED_SIGNALS. A mount or restore run under nohup, or as a background job of a script
// (SIGINT, SIGQUIT), keeps ignoring them, as the program it stands for would have.

import { constants } from 'node:os';
import { setSignalDisposition } from './ptrace/terminal.js';

const VARIABLE = 'IMGFS_IGNORED_SIGNALS';

let ignored: ReadonlySet<NodeJS.Signals> | undefined;

/** The signals ignored at start; empty when not started by bin/imgfs. */
export function signalsIgnoredAtStart(): ReadonlySet<NodeJS.Signals> {
  if (ignored === undefined) {
    ignored = parseSignalMask(process.env[VARIABLE] ?? '');
    // Not for the processes imgfs starts: they would take it for theirs.
    delete process.env[VARIABLE];
  }
  return ignored;
}

/**
 * Of signals, those ignored at start are ignored again (Node had set them back to their default
 * action); returns the others, the ones the caller may handle.
 */
export function keepIgnoring(signals: readonly NodeJS.Signals[]): NodeJS.Signals[] {
  const atStart = signalsIgnoredAtStart();
  for (const signal of signals) if (atStart.has(signal)) setSignalDisposition(constants.signals[signal], 'ignore');
  return signals.filter((signal) => !atStart.has(signal));
}

/** The named signals of a SigIgn-style hex mask (bit n - 1 for signal n); nothing for malformed text. */
export function parseSignalMask(hex: string): ReadonlySet<NodeJS.Signals> {
  if (!/^[0-9a-fA-F]{1,16}$/.test(hex.trim())) return new Set();
  const mask = BigInt(`0x${hex.trim()}`);
  const names = Object.entries(constants.signals) as [NodeJS.Signals, number][];
  return new Set(names.filter(([, number]) => (mask >> BigInt(number - 1)) & 1n).map(([name]) => name));
}
