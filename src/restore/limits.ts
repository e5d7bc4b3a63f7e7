// The last per-process state a restored task gets before it is let go: its resource limits and
// its interval timers. Limits come after the pending signals are queued (a low RLIMIT_SIGPENDING
// would refuse them) and timers after the limits, so that none expires while the restore still
// runs calls in the task.

import type { IntervalTimer, ResourceLimit } from '../extension-model.js';
import { RLIMIT_NAMES, rlimitText } from '../extension.js';
import { NativeError } from '../ptrace/errors.js';
import { prlimit } from '../ptrace/libc.js';
import type { RemoteTask } from '../ptrace/remote.js';
import { blockAllSignals } from './threads.js';

/**
 * Sets every recorded limit on pid from here (prlimit). Raising a hard limit above the one pid
 * has (the restorer's, inherited by the stub) needs CAP_SYS_RESOURCE: without it, one warning
 * line, and the hard limit is kept with the soft limit as close to the recorded one as it allows.
 */
export function setLimits(pid: number, limits: readonly ResourceLimit[], warn: (line: string) => void): void {
  limits.forEach((limit, resource) => {
    const name = RLIMIT_NAMES[resource] ?? `resource ${resource}`;
    try {
      prlimit(pid, resource, limit);
    } catch (err) {
      if (!(err instanceof NativeError)) throw err;
      if (err.code !== 'EPERM') {
        warn(`${name} ${rlimitText(limit.soft)}:${rlimitText(limit.hard)} cannot be set (${err.code}): kept`);
        return;
      }
      const { hard } = prlimit(pid, resource);
      warn(`${name} hard limit ${rlimitText(limit.hard)} cannot be raised from ${rlimitText(hard)} (EPERM): kept`);
      prlimit(pid, resource, { soft: limit.soft < hard ? limit.soft : hard, hard });
    }
  });
}

const isArmed = ({ value }: IntervalTimer): boolean => value.sec !== 0 || value.usec !== 0;

/**
 * Arms the timers that were armed at the dump (ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF; a new
 * process has none), run by the leader, with the time that was left. The leader blocks every
 * signal first, until it gets its dumped mask: a timer that expires while the restore still runs
 * calls in it stays pending instead of being taken (and dropped) by the restorer.
 */
export function armTimers(leader: RemoteTask, timers: readonly IntervalTimer[]): void {
  if (!timers.some(isArmed)) return;
  blockAllSignals(leader.tid);
  timers.forEach((timer, which) => {
    if (isArmed(timer)) leader.setitimer(which, timer.interval, timer.value);
  });
}
