// Time namespaces (time_namespaces(7)): the offsets a process's CLOCK_MONOTONIC and
// CLOCK_BOOTTIME have from the host's, from /proc/<pid>/timens_offsets, and a process's clocks.

import { readFileSync } from 'node:fs';
import { clockNow, CLOCK_BOOTTIME, CLOCK_MONOTONIC } from '../ptrace/libc.js';

export const NSEC_PER_SEC = 1_000_000_000n;

/** Nanoseconds by clock: what a time namespace shifts. */
export interface NamespaceClocks {
  monotonic: bigint;
  boottime: bigint;
}

/** "monotonic <sec> <nsec>\nboottime <sec> <nsec>\n", the seconds signed; a clock not listed has no offset. */
export function parseTimensOffsets(text: string): NamespaceClocks {
  const offset = (name: string) => {
    const m = new RegExp(`^${name}\\s+(-?\\d+)\\s+(\\d+)\\s*$`, 'm').exec(text);
    return m ? BigInt(m[1]) * NSEC_PER_SEC + BigInt(m[2]) : 0n;
  };
  return { monotonic: offset('monotonic'), boottime: offset('boottime') };
}

/** The file's text for these offsets: whole seconds rounded down, and the nanoseconds beyond them. */
export function timensOffsetsText(offsets: NamespaceClocks): string {
  const line = (name: string, ns: bigint) => {
    const sec = ns >= 0n ? ns / NSEC_PER_SEC : -((-ns + NSEC_PER_SEC - 1n) / NSEC_PER_SEC);
    return `${name} ${sec} ${ns - sec * NSEC_PER_SEC}\n`;
  };
  return line('monotonic', offsets.monotonic) + line('boottime', offsets.boottime);
}

/** pid's offsets; none where the kernel has no time namespaces. */
function timensOffsets(pid: number | 'self'): NamespaceClocks {
  try {
    return parseTimensOffsets(readFileSync(`/proc/${pid}/timens_offsets`, 'latin1'));
  } catch {
    return { monotonic: 0n, boottime: 0n };
  }
}

/** The host's clocks now: ours without our namespace's offsets. */
export function hostClocks(): NamespaceClocks {
  const own = timensOffsets('self');
  return { monotonic: clockNow(CLOCK_MONOTONIC) - own.monotonic, boottime: clockNow(CLOCK_BOOTTIME) - own.boottime };
}

/** What pid's CLOCK_MONOTONIC and CLOCK_BOOTTIME read now. */
export function processClocks(pid: number): NamespaceClocks {
  const host = hostClocks();
  const offsets = timensOffsets(pid);
  return { monotonic: host.monotonic + offsets.monotonic, boottime: host.boottime + offsets.boottime };
}
