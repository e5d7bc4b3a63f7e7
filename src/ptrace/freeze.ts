// Freezing a whole thread group with ptrace, and letting it go again exactly as it was.
//
// Every ptrace and waitpid call here runs on Node's main thread. ptrace binds a tracee to the
// tracer *thread*, not process: only the thread that seized a task may waitpid for it, read its
// registers, resume or detach it. The main thread is the one thread of ours that stays the same
// from call to call (koffi's async calls and libuv's pool run on arbitrary other threads). A wait
// for threads to stop is a WNOHANG poll with pauses, bounded by a deadline. The mount freezes
// with freezeThreadGroupAsync, whose longer pauses are timers: the FUSE server in this process
// answers everyone else while one freeze waits for a thread that is slow to stop (a process
// blocked on our own mount never stops, which is why every wait has a deadline).

import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { statusNumber } from '../proc/status.js';
import { NativeError } from './errors.js';
import {
  __WALL, nativeError, ptrace, PTRACE_DETACH, PTRACE_EVENT_STOP, PTRACE_INTERRUPT, PTRACE_O_SUSPEND_SECCOMP, PTRACE_SEIZE, SYSCALL_STOP_SIGNAL,
  queueSignalAgain, usleep, waitpid, WNOHANG,
} from './libc.js';
import { getRegs, setRegs } from './regs.js';
import { restartingStopInterrupted } from './stopinterrupted.js';
import { signalStopInfo, takenSignal } from './threadstate.js';

const { EBUSY, ECHILD, EPERM, ESRCH } = constants.errno;
const { SIGTRAP } = constants.signals;

export interface FrozenGroup {
  pid: number;
  /** Every thread, stopped; leader first, if it has not exited (see memoryHolder). */
  tids: number[];
  /** Detaches every thread, giving back the signals the freeze took. Idempotent, never throws. */
  release(): void;
}

interface Tracee {
  tgid: number;
  tid: number;
  /** In a ptrace stop: registers valid, detachable. */
  stopped: boolean;
  /** Signals caught in signal-delivery-stops (their siginfo), owed to the thread when it is detached. */
  signals: Buffer[];
  /** Seized with PTRACE_O_SUSPEND_SECCOMP: its seccomp filter does not judge our injected calls. */
  seccompSuspended: boolean;
}

/** Every thread this process traces, by tid: in a frozen group, or stranded. */
const tracees = new Map<number, Tracee>();
/**
 * Threads that had to be let go while not in a stop (they did not stop in time): ptrace can only
 * detach a stopped tracee, so they are detached by a timer as soon as they reach their stop.
 */
const stranded = new Set<Tracee>();
let reaper: NodeJS.Timeout | undefined;
const REAP_INTERVAL_MS = 20;

const isErrno = (err: unknown, errno: number) => err instanceof NativeError && err.errno === errno;

/**
 * Seizes and stops every thread of pid. Throws NativeError: ESRCH when pid is not a
 * thread-group leader or none of its threads is left, EBUSY when a thread does not stop within
 * timeoutMs (nothing stays traced), EPERM when a thread cannot be traced (e.g. another tracer
 * holds it). Blocks the calling thread while it waits: for short-lived tasks of our own (a
 * probe, tests).
 */
export function freezeThreadGroup(pid: number, opts: { timeoutMs: number }): FrozenGroup {
  const steps = freezeSteps(pid, opts);
  for (let step = steps.next(); ; step = steps.next()) {
    if (step.done) return step.value;
    usleep(step.value);
  }
}

/**
 * freezeThreadGroup, giving the event loop the waits: pauses up to SPIN_BUDGET_US in all are
 * slept on the spot (threads usually stop within microseconds, and a timer's millisecond would
 * be most of an open), longer ones are timers.
 */
export async function freezeThreadGroupAsync(pid: number, opts: { timeoutMs: number }): Promise<FrozenGroup> {
  const steps = freezeSteps(pid, opts);
  let slept = 0;
  for (let step = steps.next(); ; step = steps.next()) {
    if (step.done) return step.value;
    if (slept + step.value <= SPIN_BUDGET_US) {
      usleep(step.value);
      slept += step.value;
    } else {
      await new Promise((resolve) => setTimeout(resolve, Math.ceil(step.value / 1000)));
    }
  }
}

const SPIN_BUDGET_US = 2000;

/** A freeze, one step at a time: each yield asks for a pause of that many microseconds. */
function* freezeSteps(pid: number, opts: { timeoutMs: number }): Generator<number, FrozenGroup> {
  const deadline = performance.now() + opts.timeoutMs;
  const freeze: Freeze = { pid, timeoutMs: opts.timeoutMs, deadline, threads: new Map(), gone: new Set() };
  requireLeader(pid);
  try {
    // Stopped threads create no threads, so a listing with nothing new after all stopped is final.
    while (yield* seizeNewThreads(freeze)) yield* awaitStops(freeze);
    if (freeze.threads.size === 0) throw nativeError(ESRCH, `freeze(${pid})`, 'the process exited');
  } catch (err) {
    for (const t of freeze.threads.values()) detachQuietly(t);
    throw err;
  }
  return frozenGroup(pid, freeze.threads);
}

interface Freeze {
  pid: number;
  timeoutMs: number;
  deadline: number;
  threads: Map<number, Tracee>;
  /** Threads that exited (or were exiting) during the freeze. */
  gone: Set<number>;
}

function frozenGroup(pid: number, threads: Map<number, Tracee>): FrozenGroup {
  const others = [...threads.keys()].filter((tid) => tid !== pid).sort((a, b) => a - b);
  const tids = threads.has(pid) ? [pid, ...others] : others;
  let released = false;
  return {
    pid,
    tids,
    release() {
      if (released) return;
      released = true;
      for (const t of threads.values()) detachQuietly(t);
    },
  };
}

function requireLeader(pid: number): void {
  const call = `freeze(${pid})`;
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    throw nativeError(ESRCH, call, 'no such process');
  }
  if (statusNumber(status, 'Tgid') !== pid) throw nativeError(ESRCH, call, `${pid} is a thread, not a thread group leader`);
}

/** A number field of a thread's /proc status (TracerPid, Seccomp); 0 once the thread is gone (the seize says so). */
function threadStatusNumber(pid: number, tid: number, field: string): number {
  try {
    return statusNumber(readFileSync(`/proc/${pid}/task/${tid}/status`, 'latin1'), field);
  } catch {
    return 0;
  }
}

/** "pid 1234 (strace)", or just the pid once it is gone. */
function processName(pid: number): string {
  try {
    return `pid ${pid} (${readFileSync(`/proc/${pid}/comm`, 'latin1').trim()})`;
  } catch {
    return `pid ${pid}`;
  }
}

/** Whether tid is a thread a freeze holds (or one let go that has not stopped yet). */
export function isFrozenThread(tid: number): boolean {
  return tracees.has(tid);
}

/** The ptrace options a thread was seized with, which a later PTRACE_SETOPTIONS must keep. */
export function seizeOptions(tid: number): number {
  return tracees.get(tid)?.seccompSuspended ? PTRACE_O_SUSPEND_SECCOMP : 0;
}

/** The state letter of /proc/<pid>/task/<tid>/stat, undefined once the thread is gone. */
function threadState(pid: number, tid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
    return stat[stat.lastIndexOf(')') + 2];
  } catch {
    return undefined;
  }
}

function listThreads(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    throw nativeError(ESRCH, `freeze(${pid})`, 'the process exited during the freeze');
  }
}

/**
 * Seizes and interrupts the threads not seen yet, listing again until a listing brings nothing
 * new. A thread in uninterruptible sleep is not seized until it wakes: it could not stop, and a
 * tracee that never stopped could not be detached. Returns whether any thread was seized.
 */
function* seizeNewThreads(f: Freeze): Generator<number, boolean> {
  let seizedAny = false;
  for (;;) {
    let seized = false;
    let sleeping: number | undefined;
    const listed = listThreads(f.pid);
    for (const tid of listed) {
      if (f.threads.has(tid) || f.gone.has(tid)) continue;
      if (threadState(f.pid, tid) === 'D') {
        sleeping ??= tid;
        continue;
      }
      // Thousands of threads, or a CPU that other threads starve us of: the deadline holds here too.
      if (performance.now() > f.deadline) {
        throw nativeError(EBUSY, `freeze(${f.pid})`, `pid ${f.pid} has ${listed.length} threads, ${f.threads.size} of them seized within ${f.timeoutMs} ms`);
      }
      const t = seize(f, tid);
      if (t) {
        f.threads.set(tid, t);
        seized = seizedAny = true;
      }
    }
    if (seized) continue;
    if (sleeping === undefined) return seizedAny;
    if (performance.now() > f.deadline) throw notStopped(f, sleeping);
    yield 1000;
  }
}

function seize(f: Freeze, tid: number): Tracee | undefined {
  const known = tracees.get(tid);
  if (known) {
    if (!stranded.delete(known)) throw nativeError(EBUSY, `freeze(${f.pid})`, `thread ${tid} is already frozen`);
    return known; // still seized, its interrupt still pending
  }
  // A seccomp filter would judge the calls a snapshot injects (and may kill the task for one):
  // suspended while we trace it, as checkpointing tools do (it needs CAP_SYS_ADMIN).
  const seccompSuspended = threadStatusNumber(f.pid, tid, 'Seccomp') !== 0;
  try {
    ptrace(PTRACE_SEIZE, tid, 0, seccompSuspended ? PTRACE_O_SUSPEND_SECCOMP : 0);
  } catch (err) {
    const state = threadState(f.pid, tid);
    // ptrace refuses a zombie with EPERM; a thread that went away is not part of the group.
    if (isErrno(err, ESRCH) || (isErrno(err, EPERM) && (state === undefined || state === 'Z' || state === 'X'))) {
      f.gone.add(tid);
      return undefined;
    }
    const tracer = threadStatusNumber(f.pid, tid, 'TracerPid');
    // Busy, not forbidden: a task has one tracer at a time (a debugger, strace).
    if (isErrno(err, EPERM) && tracer) throw nativeError(EBUSY, `ptrace(PTRACE_SEIZE, ${tid})`, `already traced by ${processName(tracer)}`);
    if (isErrno(err, EPERM) && seccompSuspended) {
      throw nativeError(EPERM, `ptrace(PTRACE_SEIZE, ${tid})`, 'it runs under seccomp, and suspending its filter (PTRACE_O_SUSPEND_SECCOMP) needs CAP_SYS_ADMIN');
    }
    throw err;
  }
  const t: Tracee = { tgid: f.pid, tid, stopped: false, signals: [], seccompSuspended };
  tracees.set(tid, t);
  try {
    ptrace(PTRACE_INTERRUPT, tid);
  } catch (err) {
    if (isErrno(err, ESRCH)) return t; // exiting: awaitStops collects its exit
    detachQuietly(t); // not in the freeze's threads yet, which its failure lets go
    throw err;
  }
  return t;
}

/** Polls every seized thread until each has stopped or exited, or throws EBUSY at the deadline. */
function* awaitStops(f: Freeze): Generator<number, void> {
  let pauseUs = 50;
  for (;;) {
    let running: Tracee | undefined;
    for (const t of f.threads.values()) {
      if (t.stopped) continue;
      const now = poll(t);
      if (now === 'gone') {
        f.threads.delete(t.tid);
        f.gone.add(t.tid);
      } else if (now === 'running') {
        running ??= t;
      }
    }
    if (!running) return;
    if (performance.now() > f.deadline) throw notStopped(f, running.tid);
    yield pauseUs;
    pauseUs = Math.min(pauseUs * 2, 2000);
  }
}

function notStopped(f: Freeze, tid: number): NativeError {
  const state = threadState(f.pid, tid) ?? '?';
  return nativeError(EBUSY, `freeze(${f.pid})`, `thread ${tid} of pid ${f.pid} did not stop within ${f.timeoutMs} ms (state ${state})`);
}

/** Takes the thread's pending wait report, if any, and says where it is now. */
function poll(t: Tracee): 'stopped' | 'running' | 'gone' {
  let result;
  try {
    result = waitpid(t.tid, __WALL | WNOHANG);
  } catch (err) {
    if (!isErrno(err, ECHILD)) throw err;
    forget(t);
    return 'gone';
  }
  switch (result.kind) {
    case 'none':
      return 'running';
    case 'stopped':
      t.stopped = true;
      // Event 0 is a signal-delivery-stop (or a syscall-stop a failed injection left behind):
      // the signal is not delivered while we hold the thread, so it is owed back.
      if (result.event === 0 && result.signal !== SYSCALL_STOP_SIGNAL) t.signals.push(takenSignal(t.tid, result.signal));
      if (stoppedByUs(result)) undoStopEintr(t.tid);
      return 'stopped';
    default:
      forget(t);
      return 'gone';
  }
}

/**
 * Whether the thread stopped for our interrupt (its trap) or for a signal we hold back: not in a
 * group-stop it was in already (SIGSTOP, Ctrl-Z), after which EINTR is the kernel's own answer.
 */
function stoppedByUs({ event, signal }: { event: number; signal: number }): boolean {
  return event === PTRACE_EVENT_STOP ? signal === SIGTRAP : signal !== SYSCALL_STOP_SIGNAL;
}

/** A call our stop made fail with EINTR (stopinterrupted.ts) runs again when the thread is let go. */
function undoStopEintr(tid: number): void {
  try {
    const restarting = restartingStopInterrupted(getRegs(tid));
    if (restarting) setRegs(tid, restarting);
  } catch (err) {
    if (!isErrno(err, ESRCH)) throw err; // killed meanwhile: its exit is collected next
  }
}

function forget(t: Tracee): void {
  tracees.delete(t.tid);
  stranded.delete(t);
}

function detachQuietly(t: Tracee): void {
  try {
    detach(t);
  } catch {
    strand(t);
  }
}

/**
 * Detaches t, giving back the signals taken from it: the one it is still in the signal-delivery-stop
 * of, through PTRACE_DETACH; others queued again (a thread an injection left in a trap stop
 * ignores PTRACE_DETACH's signal). A task that was group-stopped (SIGSTOP) before the freeze goes
 * back to its group-stop by itself.
 */
function detach(t: Tracee): void {
  if (!tracees.has(t.tid)) return;
  if (!t.stopped && poll(t) !== 'stopped') {
    if (tracees.has(t.tid)) strand(t);
    return;
  }
  const owed = t.signals;
  t.signals = [];
  // Still in the signal-delivery-stop of the last signal taken (no injection has moved it on):
  // detached with it, the thread takes that very signal now, first as it came first, where a copy
  // queued again would go last, or be refused by a full queue.
  const last = owed[owed.length - 1];
  const inPlace = last !== undefined && signalStopInfo(t.tid)?.equals(last) ? last.readInt32LE(0) : 0;
  for (const info of inPlace ? owed.slice(0, -1) : owed) {
    try {
      queueSignalAgain(t.tgid, t.tid, info);
    } catch {
      // The thread is exiting: the signal is moot.
    }
  }
  try {
    ptrace(PTRACE_DETACH, t.tid, 0, inPlace);
    forget(t);
  } catch (err) {
    if (!isErrno(err, ESRCH)) throw err;
    // No longer in a stop: SIGKILL woke it and it is exiting. Reaping its exit report now is
    // what lets its real parent get one; if it has not finished exiting yet, the reaper will.
    t.stopped = false;
    if (poll(t) !== 'gone') strand(t);
  }
}

function strand(t: Tracee): void {
  try {
    ptrace(PTRACE_INTERRUPT, t.tid); // make sure it does stop once it can
  } catch {
    // Exiting: the reaper collects its exit report.
  }
  stranded.add(t);
  reaper ??= setInterval(reapStranded, REAP_INTERVAL_MS).unref();
}

function reapStranded(): void {
  for (const t of [...stranded]) {
    try {
      if (poll(t) !== 'stopped') continue;
      stranded.delete(t);
      detach(t);
    } catch {
      // Tried again on the next tick.
    }
  }
  if (stranded.size === 0) {
    clearInterval(reaper);
    reaper = undefined;
  }
}
