// Whether a file is still the one the dump saw: what a mapped file and an open file are checked by.

import type { BigIntStats } from 'node:fs';

/**
 * How the file of st differs from what the dump recorded of it, or null. Device and inode are not
 * compared: on another machine, or after a copy or a restore from a backup, the very same file
 * has others. Size and mtime to the nanosecond tell a changed file.
 */
export function changeSinceDump(st: BigIntStats, recorded: { size: number; mtimeNs: bigint }): string | null {
  if (Number(st.size) !== recorded.size) return `${CHANGED_SINCE_DUMP} (size ${recorded.size} -> ${st.size})`;
  if (st.mtimeNs !== recorded.mtimeNs) return `${CHANGED_SINCE_DUMP} (modification time differs)`;
  return null;
}

/** How changeSinceDump's answers begin. */
export const CHANGED_SINCE_DUMP = 'changed since the dump';
