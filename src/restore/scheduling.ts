// How the restored process is scheduled: each thread's policy, priority and nice value, CPU
// affinity and I/O priority, and the process's OOM adjustment, set from outside just before the
// threads are let go (a thread that ran as SCHED_FIFO, say, must not while the restore works);
// what a thread sets only for itself, its timer slack and the personality, injected.

import { readFileSync, writeFileSync } from 'node:fs';
import { cpuList, policyName, type ThreadScheduling } from '../extension-model.js';
import { NativeError } from '../ptrace/errors.js';
import type { RemoteTask } from '../ptrace/remote.js';
import { getAffinity, getIoPriority, getSchedAttr, setAffinity, setIoPriority, setSchedAttr } from '../ptrace/scheduling.js';

const PR_SET_TIMERSLACK = 29;
const PR_GET_TIMERSLACK = 30;

const SCHED_ATTR_FIELDS = ['policy', 'flags', 'nice', 'priority', 'runtime', 'deadline', 'period', 'utilMin', 'utilMax'] as const;

/** The personality, in the leader before it creates the other threads, which inherit it. */
export function setPersonality(leader: RemoteTask, personality: number): void {
  const current = Number.parseInt(readFileSync(`/proc/${leader.tid}/personality`, 'latin1'), 16);
  if (current !== personality) leader.personality(personality);
}

/**
 * The thread's timer slack, asked of and set by the thread itself: no privilege is needed that
 * way, where another task's /proc/<tid>/timerslack_ns is CAP_SYS_NICE's to read.
 */
export function setTimerSlack(thread: RemoteTask, slackNs: bigint): void {
  if (BigInt(thread.prctl(PR_GET_TIMERSLACK)) !== slackNs) thread.prctl(PR_SET_TIMERSLACK, slackNs);
}

/** What a restored thread (tid) had as the dumped thread: one warning for each part the kernel refuses. */
export function setScheduling(tid: number, s: ThreadScheduling, warn: (line: string) => void): void {
  const refused = (what: string, err: unknown) => {
    if (!(err instanceof NativeError)) throw err;
    warn(`thread ${tid}: ${what} not set again (${err.code})`);
  };
  const now = getSchedAttr(tid);
  const { cpus, ioprio } = s;
  if (SCHED_ATTR_FIELDS.some((key) => s[key] !== now[key])) {
    try {
      setSchedAttr(tid, s, s.utilMin !== now.utilMin || s.utilMax !== now.utilMax);
    } catch (err) {
      refused(`${policyName(s.policy)} (nice ${s.nice}, priority ${s.priority})`, err);
    }
  }
  if (!cpus.equals(getAffinity(tid))) {
    try {
      setAffinity(tid, cpus);
    } catch (err) {
      refused(`CPU affinity ${cpuList(cpus)}`, err);
    }
  }
  if (ioprio !== getIoPriority(tid)) {
    try {
      setIoPriority(tid, ioprio);
    } catch (err) {
      refused(`I/O priority class ${ioprio >> 13} level ${ioprio & 0x1fff}`, err);
    }
  }
}

/** The process's OOM killer adjustment; lowering it needs CAP_SYS_RESOURCE. */
export function setOomScoreAdj(pid: number, value: number, warn: (line: string) => void): void {
  const file = `/proc/${pid}/oom_score_adj`;
  if (Number(readFileSync(file, 'latin1').trim()) === value) return;
  try {
    writeFileSync(file, String(value));
  } catch (err) {
    warn(`oom_score_adj ${value} not set again (${(err as NodeJS.ErrnoException).code})`);
  }
}
