// The seccomp state of a process's threads, for the extension: read from a frozen process, and
// previewed for the size of a dump not yet opened. Only a thread in a ptrace stop tells its
// filters, so a preview takes them from the last snapshot of the same threads (filters are never
// removed: the same thread with as many filters has the same ones) or, failing that, freezes the
// process for the moment it takes to ask.

import { readdirSync, readFileSync } from 'node:fs';
import { LRUCache } from 'lru-cache';
import { statusNumber } from './proc/status.js';
import type { SeccompFilter, ThreadSeccomp } from './extension-model.js';
import { readStat } from './proc/stat.js';
import { freezeThreadGroup } from './ptrace/freeze.js';
import { readSeccompFilters } from './ptrace/seccomp.js';
import { BPF_INSTRUCTION_SIZE, SECCOMP_MODE_FILTER, SECCOMP_MODE_STRICT } from './ptrace/syscalls.js';

/** How long a preview may hold a process to ask for its filters: threads stop in microseconds. */
const PREVIEW_FREEZE_MS = 100;

export interface SeccompState {
  /** The distinct filters of all threads. */
  filters: SeccompFilter[];
  /** Each thread's mode, in the order of the tids asked for; undefined: none. */
  threads: (ThreadSeccomp | undefined)[];
}

/** The filters of threads seen in a snapshot, by thread incarnation and filter count. */
const knownChains = new LRUCache<string, SeccompFilter[]>({ max: 256 });

/** The thread's mode and filter count from its status (Seccomp, Seccomp_filters). */
function parseStatus(status: string): { mode: number; count: number } {
  return { mode: statusNumber(status, 'Seccomp'), count: statusNumber(status, 'Seccomp_filters') };
}

const threadStatus = (pid: number, tid: number): string => readFileSync(`/proc/${pid}/task/${tid}/status`, 'latin1');

/** Filters a snapshot would record of the thread with this status: 0 in strict mode, null without seccomp. */
export function previewChainLength(status: string): number | null {
  const { mode, count } = parseStatus(status);
  return mode === SECCOMP_MODE_FILTER ? count : mode === SECCOMP_MODE_STRICT ? 0 : null;
}

const chainKey = (tid: number, count: number) => `${tid}:${readStat(tid).startTime}:${count}`;

/** Filters are the same filter when their programs and flags are. */
const filterKey = ({ program, log }: SeccompFilter) => `${log ? 1 : 0}:${program.toString('base64')}`;

/** The seccomp state of threads of a frozen process (in ptrace stops), each with its status file's text. */
export function readSeccomp(threads: readonly { tid: number; status: string }[]): SeccompState {
  const filters: SeccompFilter[] = [];
  const indices = new Map<string, number>();
  const indexOf = (filter: SeccompFilter) => {
    const key = filterKey(filter);
    let index = indices.get(key);
    if (index === undefined) indices.set(key, (index = filters.push(filter) - 1));
    return index;
  };
  return {
    filters,
    threads: threads.map(({ tid, status }): ThreadSeccomp | undefined => {
      const { mode } = parseStatus(status);
      if (mode === SECCOMP_MODE_STRICT) return { mode: 'strict' };
      if (mode !== SECCOMP_MODE_FILTER) return undefined;
      const chain = readSeccompFilters(tid);
      knownChains.set(chainKey(tid, chain.length), chain);
      return { mode: 'filter', filters: chain.map(indexOf) };
    }),
  };
}

/**
 * The instruction counts of the distinct filters a snapshot taken now would record. A process
 * that cannot be frozen now (it cannot be opened either) gets one instruction per filter.
 */
export function previewFilterLengths(pid: number): number[] {
  const threads = readdirSync(`/proc/${pid}/task`).map(Number).flatMap((tid) => {
    try {
      const { mode, count } = parseStatus(threadStatus(pid, tid));
      return mode === SECCOMP_MODE_FILTER ? [{ tid, count }] : [];
    } catch {
      return []; // the thread ended while we looked
    }
  });
  if (threads.length === 0) return [];
  const known = threads.map(({ tid, count }) => knownChains.get(chainKey(tid, count)));
  if (known.every((chain) => chain !== undefined)) return distinctLengths(known.flat() as SeccompFilter[]);
  try {
    const frozen = freezeThreadGroup(pid, { timeoutMs: PREVIEW_FREEZE_MS });
    try {
      return distinctLengths(readSeccomp(frozen.tids.map((tid) => ({ tid, status: threadStatus(pid, tid) }))).filters);
    } finally {
      frozen.release();
    }
  } catch {
    return threads.flatMap(({ count }) => Array<number>(count).fill(1));
  }
}

function distinctLengths(filters: readonly SeccompFilter[]): number[] {
  return [...new Map(filters.map((f) => [filterKey(f), f.program.length / BPF_INSTRUCTION_SIZE])).values()];
}
