// Fields of /proc/<pid>/status (a thread's too): one "Name:<tab>value" line each.

import { readFileSync } from 'node:fs';

/** The text of a field, trimmed; undefined when the kernel shows no such line. */
export function statusField(status: string, name: string): string | undefined {
  return new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1].trim();
}

const firstWord = (status: string, name: string): string => statusField(status, name)?.split(/\s+/)[0] ?? '';

/** A field's first number (TracerPid, Seccomp, the real uid of Uid); 0 when the line is missing or is not one. */
export function statusNumber(status: string, name: string): number {
  const word = firstWord(status, name);
  return /^\d+$/.test(word) ? Number(word) : 0;
}

/** A hexadecimal mask (SigPnd, SigCgt, CapEff...); 0 when the line is missing or is not one. */
export function statusMask(status: string, name: string): bigint {
  const word = firstWord(status, name);
  return /^[0-9a-f]+$/.test(word) ? BigInt(`0x${word}`) : 0n;
}

/**
 * The id a task has in its own pid namespace (getpid, gettid there): the last of NSpid's, which
 * lists it in each namespace from ours inwards (status: its /proc status, if read already). Our
 * own id of it where the kernel shows no NSpid.
 */
export function ownId(tid: number, status = readFileSync(`/proc/${tid}/status`, 'latin1')): number {
  const ids = statusField(status, 'NSpid')?.split(/\s+/) ?? [];
  const last = Number(ids[ids.length - 1]);
  return Number.isInteger(last) && last > 0 ? last : tid;
}
