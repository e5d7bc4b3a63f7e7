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

/**
 * A field that lists an id once per pid namespace from ours inwards (NStgid, NSpgid, NSsid): the
 * id in the task's own namespace, the last one (0 for a group or session that lies outside it);
 * ours where the kernel shows no such field.
 */
export function innermostId(status: string, name: string, ours: number): number {
  const ids = statusField(status, name)?.split(/\s+/).map(Number) ?? [];
  return ids.length > 0 && ids.every(Number.isInteger) ? ids[ids.length - 1] : ours;
}

/**
 * The id the process of status sees its parent ppid by (getppid): its id in the process's own
 * pid namespace, 0 when the parent lies in an outer one (the parent of a namespace's init).
 */
export function parentIdSeen(status: string, ppid: number): number {
  if (ppid === 0) return 0;
  let parentStatus: string;
  try {
    parentStatus = readFileSync(`/proc/${ppid}/status`, 'latin1');
  } catch {
    return 0; // gone: the kernel would name the reaper that takes the process next
  }
  const depth = (s: string) => statusField(s, 'NSpid')?.split(/\s+/).length ?? 1;
  return depth(parentStatus) === depth(status) ? innermostId(parentStatus, 'NSpid', ppid) : 0;
}
