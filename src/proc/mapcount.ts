// The most VMAs a process may have on this machine.

import { readFileSync } from 'node:fs';

/** vm.max_map_count (65530 unless raised); the kernel's default where it cannot be read. */
export function maxMapCount(): number {
  try {
    return Number(readFileSync('/proc/sys/vm/max_map_count', 'latin1').trim());
  } catch {
    return 65530;
  }
}
