// The threads of a restored task: every thread of the dump but the leader is a clone3 the leader
// runs (with its old tid where it is free, unless --new-pid), and each thread, the leader last, gets its exit
// futexes (and glibc's copy of its tid), rseq area, alternate signal stack and pending signals
// back through calls of its own, then its registers, TLS entries, FPU/SSE/AVX state and signal
// mask through ptrace. Then the control area goes and every thread is let go.

import { constants } from 'node:os';

const { SIGSTOP } = constants.signals;
import { NT_PRFPREG, NT_X86_XSTATE } from '../elfnotes.js';
import type { RobustList, RseqArea, SignalStack } from '../extension-model.js';
import type { UserDesc, UserRegs } from '../model.js';
import { NativeError } from '../ptrace/errors.js';
import { forRestoredTask, parkInTrapStop } from '../ptrace/inject.js';
import { ptrace, PTRACE_DETACH, queueSignalAgain } from '../ptrace/libc.js';
import { readMemory } from '../ptrace/memory.js';
import type { RemoteTask } from '../ptrace/remote.js';
import { setSignalMask } from '../ptrace/threadstate.js';
import { setThreadArea } from '../ptrace/regs.js';
import { setRegs, setRegset } from '../ptrace/regs.js';
import { RestoreError } from './errors.js';
import type { IdChoice } from './restore.js';
import { CONTROL_SIZE } from './stub.js';
import { CLONE_FILES, CLONE_VM } from '../ptrace/syscalls.js';

const CLONE_FS = 0x200;
const CLONE_SIGHAND = 0x800;
const CLONE_THREAD = 0x10000;
const CLONE_SYSVSEM = 0x40000;
/** What pthread_create shares; TLS and the tid words are set from the dump instead. */
const THREAD_FLAGS = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;

/** What a thread resumes with. Absent parts (an image without extension) stay as they are. */
export interface ThreadState {
  tid: number;
  regs: UserRegs;
  tls: UserDesc[];
  sigmask?: bigint;
  fpregs?: Buffer;
  xstate?: Buffer;
  /** Absent or 0: none, as a thread clone3 creates and the stub's leader have. */
  clearChildTid?: number;
  robustList?: RobustList;
  /** Absent or address 0: none, as a thread clone3 creates and the stub's leader have. */
  rseq?: RseqArea;
  /** Absent or SS_DISABLE: none, as a thread clone3 creates and the stub's leader have. */
  sigaltstack?: SignalStack;
  /** Signals in the thread's own queue at the dump. */
  pendingSignals?: Buffer[];
}

/**
 * Creates one thread per state, in the leader, and appends each tid to `created` as soon as it
 * exists (whoever cleans up after a failure must reap every one of them). ids: whether each gets
 * its dumped tid (required: or an error; preferred: where it is free, else a new one and a warning).
 */
export function createThreads(leader: RemoteTask, states: readonly ThreadState[], ids: IdChoice, created: number[], warn: (line: string) => void): void {
  for (const state of states) {
    const clone = (setTid?: number) => leader.clone3({ flags: THREAD_FLAGS, exitSignal: 0, setTid }).tid;
    try {
      created.push(clone(ids === 'new' ? undefined : state.tid));
    } catch (err) {
      const taken = err instanceof NativeError && err.errno === constants.errno.EEXIST;
      if (!taken || ids === 'new') throw err;
      if (ids === 'required') throw new RestoreError(`thread id ${state.tid} is in use by another process: --same-pid cannot restore that thread`);
      created.push(clone());
      warn(`thread id ${state.tid} is in use by another process: that thread gets tid ${created[created.length - 1]}`);
    }
  }
}

const SS_ONSTACK = 1;
const SS_DISABLE = 2;

/**
 * What the kernel keeps about the thread's memory and uses on its own: when the thread exits, its
 * clear_child_tid (which wakes a pthread_join) and its robust futex list; whenever it is
 * scheduled, its rseq area (the CPU it runs on, which glibc's sched_getcpu reads); when a signal
 * with SA_ONSTACK arrives, its alternate signal stack. Each applies to the calling thread only,
 * so `thread` runs the calls itself; they clobber its registers, hence before setThreadState. An
 * rseq area or a signal stack the kernel refuses is a warning: the program runs on without it.
 * ownTid: the thread's id as it knows it (in its pid namespace).
 */
export function setOwnState(thread: RemoteTask, ownTid: number, state: ThreadState, warn: (line: string) => void): void {
  if (state.clearChildTid) {
    thread.setTidAddress(state.clearChildTid);
    refreshCachedTid(thread, ownTid, state.tid, state.clearChildTid);
  }
  if (state.robustList && state.robustList.head !== 0) thread.setRobustList(state.robustList.head, state.robustList.len);
  const { rseq, sigaltstack: stack } = state;
  if (rseq && rseq.address !== 0) {
    orWarn(() => thread.registerRseq(rseq.address, rseq.length, rseq.signature),
      (code) => warn(`thread ${state.tid}: its rseq area at 0x${rseq.address.toString(16)} cannot be registered again (${code}): sched_getcpu reads a stale CPU`));
  }
  if (stack && !(stack.flags & SS_DISABLE)) {
    // SS_ONSTACK only reports that the thread was on it; the stub's thread is not.
    orWarn(() => thread.setSignalStack(stack.sp, (stack.flags & ~SS_ONSTACK) >>> 0, stack.size),
      (code) => warn(`thread ${state.tid}: its alternate signal stack at 0x${stack.sp.toString(16)} cannot be set again (${code}): SA_ONSTACK handlers run on the thread's stack`));
  }
}

/**
 * glibc keeps each thread's tid in its thread descriptor, in the very word clear_child_tid points
 * to (set_tid_address(&pd->tid), CLONE_CHILD_CLEARTID), and signals other threads with it
 * (pthread_kill, pthread_sigqueue): a thread restored under a new tid (tid, as it knows it) gets
 * it written there, when that word still holds the dumped tid (musl, for one, points
 * clear_child_tid at a lock instead).
 */
function refreshCachedTid(thread: RemoteTask, tid: number, dumpedTid: number, address: number): void {
  if (tid === dumpedTid) return;
  let word: Buffer;
  try {
    word = readMemory(thread.tid, address, 4);
  } catch (err) {
    if (err instanceof NativeError) return; // not readable: not glibc's descriptor
    throw err;
  }
  if (word.readInt32LE(0) !== dumpedTid) return;
  word.writeInt32LE(tid, 0);
  thread.writeMemory(address, word);
}

const ALL_SIGNALS = ~0n;

/** Blocks every signal in a stopped thread, until setThreadState gives it its dumped mask. */
export function blockAllSignals(tid: number): void {
  setSignalMask(tid, ALL_SIGNALS);
}

/**
 * Queues the signals pending at the dump again, run by the thread itself: its own queue (tid
 * given), or the process's shared one (tgid's leader, tid omitted). The thread blocks every signal
 * first, until setThreadState gives it its dumped mask: a signal taken on the way back from a
 * later injected call would be lost (the restorer suppresses them), and one not blocked would be
 * dropped at once if its disposition ignores it. A signal the kernel refuses is a warning.
 */
export function queuePendingSignals(thread: RemoteTask, signals: readonly Buffer[], tgid: number, tid: number | undefined, warn: (line: string) => void): void {
  if (signals.length === 0) return;
  blockAllSignals(thread.tid);
  for (const info of signals) {
    orWarn(() => thread.queueSignal(info, tgid, tid),
      (code) => warn(`pending signal ${info.readInt32LE(0)} of ${tid === undefined ? 'the process' : `thread ${tid}`} cannot be queued again (${code}): lost`));
  }
}

/** Runs a remote call; a failure the kernel reports goes to `warn` with its errno code instead of throwing. */
function orWarn(call: () => void, warn: (code: string) => void): void {
  try {
    call();
  } catch (err) {
    if (!(err instanceof NativeError)) throw err;
    warn(err.code);
  }
}

/**
 * Gives a thread held in a syscall-exit stop its dumped state, and parks it in a trap stop from
 * which it is released as the dumped thread would have gone on (parkInTrapStop): an interrupted
 * system call restarts, or fails with EINTR for a signal that arrives with the release and whose
 * handler runs, so that a pause() or sigsuspend() waiting for it wakes up. Returns the signals
 * held back on the way, for releaseThreads.
 */
export function setThreadState(tid: number, state: ThreadState, warn: (line: string) => void): Buffer[] {
  if (state.xstate && state.xstate.length > 0) {
    try {
      setRegset(tid, NT_X86_XSTATE, state.xstate);
    } catch (err) {
      if (!(err instanceof NativeError) || !state.fpregs) throw err;
      warn(`thread ${state.tid}: this CPU refuses the dumped XSAVE state (${err.code}): only x87/SSE state restored`);
      setRegset(tid, NT_PRFPREG, state.fpregs);
    }
  } else if (state.fpregs) {
    setRegset(tid, NT_PRFPREG, state.fpregs);
  }
  for (const desc of state.tls) setThreadArea(tid, desc);
  if (state.sigmask !== undefined) setSignalMask(tid, state.sigmask);
  setRegs(tid, forRestoredTask(state.regs));
  return parkInTrapStop(tid);
}

/**
 * The last steps: the leader unmaps the control area it runs from (its registers are replaced
 * right after, at the exit of that very call), gets its state, and every thread is detached.
 * stopped: the task was dumped stopped. A SIGSTOP sent once no call is left to inject waits
 * while the threads are held, and stops the group before any of them runs an instruction of its
 * own (a traced task would have reported it to us instead).
 */
export function releaseThreads(
  leader: RemoteTask, control: number, state: ThreadState, others: readonly { tid: number; held: Buffer[] }[], stopped: boolean, warn: (line: string) => void,
): void {
  leader.munmap(control, CONTROL_SIZE);
  const held = setThreadState(leader.tid, state, warn);
  leader.dispose();
  if (stopped) process.kill(leader.tid, SIGSTOP);
  for (const thread of [{ tid: leader.tid, held }, ...others]) {
    for (const info of thread.held) queueSignalAgain(leader.tid, thread.tid, info);
    ptrace(PTRACE_DETACH, thread.tid, 0, 0);
  }
}
