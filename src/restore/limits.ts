// The last per-process state a restored task gets before it is let go: its resource limits and
// its interval and POSIX timers. Limits come after the pending signals are queued (a low
// RLIMIT_SIGPENDING would refuse them) and timers after the limits, so that none expires while
// the restore still runs calls in the task.

import { isTimerArmed, timeToExpiry, type IntervalTimer, type PosixTimer, type ResourceLimit, type TimeSpec } from '../extension-model.js';
import { cpuClockTarget, RLIMIT_NAMES, rlimitText, withCpuClockTarget } from '../extension.js';
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

const isSpecArmed = ({ value }: { value: TimeSpec }): boolean => value.sec !== 0 || value.nsec !== 0;

const PR_TIMER_CREATE_RESTORE_IDS = 77;
const PR_TIMER_CREATE_RESTORE_IDS_OFF = 0;
const PR_TIMER_CREATE_RESTORE_IDS_ON = 1;

/** The dumped timers of a process. */
export interface ProcessTimers {
  /** ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF. */
  itimers: readonly IntervalTimer[];
  posixTimers: readonly PosixTimer[];
}

/**
 * Gives the leader its timers back (a new process has none): creates the POSIX timers with their
 * dumped ids, then arms every timer that was armed at the dump with the time that was left. The
 * leader blocks every signal first, until it gets its dumped mask: a timer that expires while the
 * restore still runs calls in it stays pending instead of being taken (and dropped) by the
 * restorer. restoredTids maps each dumped tid (the leader's: the pid) to the restored one.
 */
export function armTimers(leader: RemoteTask, timers: ProcessTimers, restoredTids: ReadonlyMap<number, number>, warn: (line: string) => void): void {
  const created = createPosixTimers(leader, timers.posixTimers, restoredTids, warn);
  if (!timers.itimers.some(isTimerArmed) && !created.some(isSpecArmed)) return;
  blockAllSignals(leader.tid);
  timers.itimers.forEach((timer, which) => {
    // An ITIMER_REAL armed with the 0 left it shows between its expiry and its SIGALRM would be disarmed for good.
    if (isTimerArmed(timer, which)) leader.setitimer(which, timer.interval, timeToExpiry(timer, which));
  });
  for (const timer of created) if (isSpecArmed(timer)) leader.timerSettime(timer.id, timer.interval, timer.value);
}

/**
 * timer_create for each timer, with its dumped id (the program holds its timer_t), between
 * prctl(PR_TIMER_CREATE_RESTORE_IDS) on and off (Linux 6.15+). A SIGEV_THREAD_ID timer notifies
 * the restored thread of its dumped one, a CPU-time clock of the dumped process or of one of its
 * threads counts the restored one's; a CPU-time clock of the creating thread (glibc's
 * CLOCK_THREAD_CPUTIME_ID) counts the leader's, which creates them all. A timer the kernel
 * refuses is one warning line, and the restore goes on without it. Returns the timers created.
 */
function createPosixTimers(leader: RemoteTask, timers: readonly PosixTimer[], restoredTids: ReadonlyMap<number, number>, warn: (line: string) => void): PosixTimer[] {
  if (timers.length === 0) return [];
  const lost = (timer: PosixTimer, code: string, why = '') => warn(`POSIX timer ${timer.id} cannot be created again (${code}${why}): lost`);
  try {
    leader.prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0);
  } catch (err) {
    if (!(err instanceof NativeError)) throw err;
    for (const timer of timers) lost(timer, err.code, ': this kernel cannot give a timer its id');
    return [];
  }
  const created: PosixTimer[] = [];
  for (const timer of timers) {
    const target = cpuClockTarget(timer.clock);
    const clock = target ? withCpuClockTarget(timer.clock, restoredTids.get(target) ?? target) : timer.clock;
    try {
      leader.timerCreate(clock, timer.id, { ...timer, tid: restoredTids.get(timer.tid) ?? timer.tid });
      created.push(timer);
    } catch (err) {
      if (!(err instanceof NativeError)) throw err;
      lost(timer, err.code);
    }
  }
  leader.prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0);
  return created;
}
