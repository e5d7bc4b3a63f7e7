// Making threads that freezeThreadGroup holds run system calls for us: the only way to learn what
// the kernel tells nobody but the task itself (its exact brk, for one). A thread executes a
// `syscall` instruction of its own (in its [vdso]) with our registers, and gets its own back after.

import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { PAGE_SIZE, type UserRegs } from '../model.js';
import { readStat, uptimeTicks } from '../proc/stat.js';
import { statusField, statusNumber } from '../proc/status.js';
import {
  __WALL, nativeError, ptrace, ptraceEventMessage, PTRACE_CONT, PTRACE_EVENT_CLONE, PTRACE_EVENT_FORK, PTRACE_EVENT_STOP,
  PTRACE_INTERRUPT, PTRACE_O_TRACESYSGOOD, PTRACE_SETOPTIONS, PTRACE_SYSCALL, queueSignalAgain, SYSCALL_STOP_SIGNAL, usleep, waitpid, WNOHANG,
} from './libc.js';
import { getSignalMask, setSignalMask, takenSignal } from './threadstate.js';
import { isFrozenThread, seizeOptions } from './freeze.js';
import { NativeError } from './errors.js';
import { readMemory } from './memory.js';
import { getRegs, setRegs } from './regs.js';
import { killAndReap } from './spawn.js';
import { SYS, syscallName } from './syscalls.js';

const { EINTR, EIO, ESRCH, ETIMEDOUT } = constants.errno;
/** SIGKILL and SIGSTOP stay deliverable: the kernel leaves them out of any mask. */
const ALL_SIGNALS = (1n << 64n) - 1n;

const ERESTARTSYS = -512n;
const ERESTARTNOINTR = -513n;
const ERESTARTNOHAND = -514n;
const ERESTART_RESTARTBLOCK = -516n;
/** The length of `syscall` (0f 05), and of `int 0x80`. */
const SYSCALL_LENGTH = 2n;
/** A call takes microseconds; seconds are a machine so loaded that other threads starve ours. */
const INJECT_TIMEOUT_MS = 5000;
/** A fork copies the page tables and takes a reference on every page: about 50 ms per GiB here. */
const CLONE_TIMEOUT_MS = 60_000;

/** One system call to run in one thread: `nr` with up to six arguments. */
export interface InjectedCall {
  tid: number;
  nr: number;
  args: (number | bigint)[];
  /** ptrace options for this call besides those the thread was seized with (PTRACE_O_TRACECLONE...). */
  traceOptions?: number;
}

/**
 * Runs syscall `nr` with up to six arguments in thread tid, which must be in a ptrace stop taken
 * by freezeThreadGroup, and returns the raw rax (a negative errno on failure). The thread is left
 * in a trap stop with its registers as they were, as the freeze left it, so release() detaches
 * it normally.
 */
export function injectSyscall(tid: number, nr: number, args: (number | bigint)[]): bigint {
  return injectSyscalls([{ tid, nr, args }])[0];
}

/** A call on its way through a thread: its saved registers, the stops it has passed. */
interface Injection {
  tid: number;
  /** null when the registers could not even be read: nothing was changed. */
  saved: UserRegs | null;
  /** Whether the thread was sent on with our registers (else it is still in the stop it was in). */
  resumed: boolean;
  entered: boolean;
  /** The call's result, once its exit was seen; the thread then goes back to a trap stop. */
  rax?: bigint;
  /** The tid of the child the call forked or cloned, if it did (with traceOptions asking for it). */
  child?: number;
  done: boolean;
  failure?: unknown;
  /** The siginfo of each signal taken on the way, held back. */
  heldSignals: Buffer[];
  /** The thread's own signal mask, while the call runs with every signal blocked. */
  savedMask?: bigint;
}

/**
 * injectSyscall in several threads at once (one call per thread): each thread waits for the
 * kernel's wake-ups on its own, so a thousand threads cost about as long as a few, not a thousand
 * round trips. Every thread is left as injectSyscall leaves it, also when another one fails; the
 * first failure is thrown once all are settled.
 */
export function injectSyscalls(calls: readonly InjectedCall[]): bigint[] {
  const injections = settleInjections(calls, INJECT_TIMEOUT_MS);
  throwFirstFailure(injections);
  return injections.map((i) => i.rax!);
}

function throwFirstFailure(injections: readonly Injection[]): void {
  const failed = injections.find((i) => i.failure !== undefined);
  if (failed) throw failed.failure;
}

/** Runs the calls to their end, or to their failure, which each injection records. */
function settleInjections(calls: readonly InjectedCall[], timeoutMs: number): Injection[] {
  for (const { args } of calls) {
    if (args.length > 6) throw new RangeError(`injectSyscall: at most 6 arguments, not ${args.length}`);
  }
  if (new Set(calls.map((c) => c.tid)).size !== calls.length) throw new RangeError('injectSyscalls: one call per thread');
  const deadline = performance.now() + timeoutMs;
  const injections = calls.map(startInjection);
  try {
    let running = injections.filter((i) => i.failure === undefined);
    const pacer = new PollPacer();
    while (running.length > 0) {
      let progressed = false;
      for (const injection of running) progressed = advance(injection) || progressed;
      running = running.filter((i) => !i.done && i.failure === undefined);
      if (running.length > 0 && performance.now() > deadline) {
        for (const i of running) {
          i.failure = nativeError(ETIMEDOUT, `inject(${i.tid})`, `thread ${i.tid} did not finish an injected ${syscallName(calls.find((c) => c.tid === i.tid)!.nr)} within ${timeoutMs} ms`);
        }
        break;
      }
      if (progressed) pacer.progressed();
      else pacer.idle();
    }
  } finally {
    for (const injection of injections) {
      if (injection.failure !== undefined && injection.saved !== null) {
        if (injection.resumed) recover(injection.tid, injection.saved, injection.heldSignals);
        else putBack(injection.tid, injection.saved);
      }
      giveBackSignals(injection);
    }
  }
  return injections;
}

/** The thread's own signal mask back, and the signals held back on the way queued again (once). */
function giveBackSignals(injection: Injection): void {
  if (injection.savedMask !== undefined) restoreMask(injection.tid, injection.savedMask);
  requeue(injection.tid, injection.heldSignals);
  injection.savedMask = undefined;
  injection.heldSignals = [];
}

/**
 * Runs a clone or fork syscall (`nr`, args) in thread tid as injectSyscall does, with the child
 * traced by us (traceOptions: PTRACE_O_TRACECLONE or PTRACE_O_TRACEFORK, as the call's flags make
 * it, and the options to keep). Returns the raw rax, which is the child's pid in the caller's pid
 * namespace, and the child's tid in ours once it is in its first stop (null if none was made).
 */
export function injectClone(tid: number, nr: number, args: (number | bigint)[], traceOptions: number): { rax: bigint; child: number | null } {
  const startedAt = uptimeTicks();
  const injections = settleInjections([{ tid, nr, args, traceOptions }], CLONE_TIMEOUT_MS);
  const [{ rax, child }] = injections;
  try {
    throwFirstFailure(injections);
    if (child !== undefined) awaitStop(child, performance.now() + INJECT_TIMEOUT_MS);
  } catch (err) {
    // A child made by a call that failed after all is nobody's: it must not run on.
    if (child !== undefined) killAndReap([child]);
    else killUnannouncedChildren(startedAt);
    throw err;
  }
  return { rax: rax!, child: child ?? null };
}

/**
 * A caller killed after its clone made the child but before we took the clone's event loses the
 * event, and with it the child's pid: the child, traced by us and stopped, would hold the caller's
 * memory and descriptors (its listening sockets) until we exit. It is found as a process we trace
 * that started since the call (uptimeTicks, to the tick), is no frozen thread, and is no finished
 * copy (those are named imgfs:<pid> before their clone returns); and ended.
 */
function killUnannouncedChildren(since: number): void {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || isFrozenThread(Number(entry))) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'latin1');
      if (statusNumber(status, 'TracerPid') !== process.pid || statusField(status, 'Name')?.startsWith('imgfs:')) continue;
      if (readStat(Number(entry)).startTime >= since) killAndReap([Number(entry)]);
    } catch {
      // Gone meanwhile.
    }
  }
}

/**
 * Points a stopped task we trace at exit(0): should it ever run without us (imgfs killed, the kernel
 * detaching its tracees), it ends at once instead of running the code it was stopped in.
 */
export function disarm(tid: number): void {
  setRegs(tid, { ...getRegs(tid), rip: BigInt(syscallInstruction(tid)), rax: BigInt(SYS.exit), rdi: 0n, orig_rax: -1n });
}

function startInjection({ tid, nr, args, traceOptions = 0 }: InjectedCall): Injection {
  const [rdi = 0n, rsi = 0n, rdx = 0n, r10 = 0n, r8 = 0n, r9 = 0n] = args.map(BigInt);
  const injection: Injection = { tid, saved: null, resumed: false, entered: false, done: false, heldSignals: [] };
  try {
    const saved = getRegs(tid);
    injection.saved = saved;
    const site = ownSyscallInstruction(tid, saved.rip) ?? syscallInstruction(tid);
    // Blocked, a signal that comes while the call runs stays queued where the kernel put it:
    // taken and queued again, it would lose its place (real-time signals are ordered) or, the
    // queue full again meanwhile, itself.
    injection.savedMask = getSignalMask(tid);
    setSignalMask(tid, ALL_SIGNALS);
    ptrace(PTRACE_SETOPTIONS, tid, 0, PTRACE_O_TRACESYSGOOD | seizeOptions(tid) | traceOptions);
    // orig_rax = -1: the stop we took the thread in may be on the way out of an interrupted
    // syscall, and the kernel's restart logic (run when we resume it) must not act on our registers.
    setRegs(tid, { ...saved, rip: BigInt(site), rax: BigInt(nr), orig_rax: -1n, rdi, rsi, rdx, r10, r8, r9 });
    ptrace(PTRACE_SYSCALL, tid, 0, 0);
    injection.resumed = true;
  } catch (err) {
    injection.failure = err;
  }
  return injection;
}

/**
 * Takes the thread's next stop, if it has one, and moves the call on: resumed to the syscall's
 * exit after its entry; after its exit, its own registers back and on to a trap stop (below),
 * done there. A signal that arrives meanwhile stops the thread in a signal-delivery-stop: it is
 * held back (and queued again once we are done) so that no handler runs on our registers. Event
 * stops (the freeze's interrupt, a group-stop) are passed through. Returns whether the thread had
 * stopped.
 *
 * The trap stop: a syscall-exit stop runs no restart logic when it ends, so a thread frozen in an
 * interrupted call (rax = -ERESTART*) would return -512 to its code if released there. Sent on
 * with PTRACE_INTERRUPT pending, it stops again where the freeze found it, in the kernel's signal
 * handling on its way out, its registers exactly its own: released from there, the kernel itself
 * restarts the call, or fails it with EINTR for a signal whose handler runs (pause() wakes up).
 */
function advance(injection: Injection): boolean {
  const { tid } = injection;
  try {
    const stop = waitpid(tid, __WALL | WNOHANG);
    if (stop.kind === 'none') return false;
    if (stop.kind !== 'stopped') throw nativeError(ESRCH, `inject(${tid})`, `thread ${tid} exited during a syscall injection`);
    if (injection.rax !== undefined) {
      if (stop.event === PTRACE_EVENT_STOP) {
        injection.done = true;
        // At once, not once the other threads' calls are done too: should imgfs die (SIGKILL),
        // the kernel lets this thread run as it is, and it must not run with every signal blocked.
        giveBackSignals(injection);
        return true;
      }
      if (stop.event === 0) injection.heldSignals.push(takenSignal(tid, stop.signal));
      ptrace(PTRACE_CONT, tid, 0, 0);
      return true;
    }
    if (stop.event === 0 && stop.signal === SYSCALL_STOP_SIGNAL && injection.entered) {
      injection.rax = getRegs(tid).rax;
      setRegs(tid, injection.saved!);
      ptrace(PTRACE_INTERRUPT, tid);
      ptrace(PTRACE_CONT, tid, 0, 0);
      return true;
    }
    if (stop.event === 0 && stop.signal === SYSCALL_STOP_SIGNAL) injection.entered = true;
    else if (stop.event === PTRACE_EVENT_CLONE || stop.event === PTRACE_EVENT_FORK) injection.child = ptraceEventMessage(tid);
    else if (stop.event === 0) injection.heldSignals.push(takenSignal(tid, stop.signal));
    ptrace(PTRACE_SYSCALL, tid, 0, 0);
  } catch (err) {
    injection.failure = err;
  }
  return true;
}

/** The task's current brk, as brk(0) returns it. */
export function readBrk(tid: number): number {
  return Number(injectSyscall(tid, SYS.brk, [0]));
}

/**
 * The saved registers, rewound to run again the syscall the freeze interrupted, for a thread that
 * will not pass through the kernel's own restart logic: one a failed injection left in another
 * stop than a trap stop. Taken in a stop on its way out of an
 * interrupted syscall, a thread has rax = -ERESTART*; released from a syscall-exit stop instead it
 * would return -512 to the task. So do what the kernel would have done: rax = the syscall number
 * (restart_syscall for a call that resumes from its restart block, e.g. nanosleep), rip back onto
 * the instruction. A signal the task has a handler for and that arrives with the release then
 * sees the call restarted rather than failed with EINTR (-ERESTARTNOHAND's EINTR is lost on this
 * failure path: the freeze's rewritten EINTRs, stopinterrupted.ts, among them).
 */
function withSyscallRestarted(saved: UserRegs): UserRegs {
  if (BigInt.asIntN(64, saved.orig_rax) < 0n) return saved;
  switch (BigInt.asIntN(64, saved.rax)) {
    case ERESTARTSYS:
    case ERESTARTNOINTR:
    case ERESTARTNOHAND:
      return { ...saved, rax: saved.orig_rax, rip: saved.rip - SYSCALL_LENGTH };
    case ERESTART_RESTARTBLOCK:
      return { ...saved, rax: BigInt(SYS.restart_syscall), rip: saved.rip - SYSCALL_LENGTH };
    default:
      return saved;
  }
}

/**
 * A restored thread's registers for its release from a trap stop (parkInTrapStop), where the
 * kernel's restart logic acts on them as on the dumped thread's: as they were, but for a call that
 * would resume from its restart block, which the new task does not have (withoutRestartBlock).
 */
export function forRestoredTask(saved: UserRegs): UserRegs {
  const inSyscall = BigInt.asIntN(64, saved.orig_rax) >= 0n;
  return inSyscall && BigInt.asIntN(64, saved.rax) === ERESTART_RESTARTBLOCK ? withoutRestartBlock(saved) : saved;
}

/**
 * Sends a thread on from the syscall-exit stop it is held in to a trap stop in the kernel's signal
 * handling on its way out (PTRACE_INTERRUPT pending), with the registers it has: released from
 * there, the kernel restarts an interrupted call itself, or fails it with EINTR for a signal whose
 * handler runs, as it would have for the dumped thread. Returns the signals that stopped it on the
 * way (their siginfo), held back: to be queued again (queueSignalAgain) before its release.
 */
export function parkInTrapStop(tid: number): Buffer[] {
  const held: Buffer[] = [];
  ptrace(PTRACE_INTERRUPT, tid);
  ptrace(PTRACE_CONT, tid, 0, 0);
  for (;;) {
    const stop = waitpid(tid, __WALL);
    if (stop.kind !== 'stopped') throw nativeError(ESRCH, `trap stop of ${tid}`, `thread ${tid} ended on its way to a trap stop`);
    if (stop.event === PTRACE_EVENT_STOP) return held;
    if (stop.event === 0 && stop.signal !== SYSCALL_STOP_SIGNAL) held.push(takenSignal(tid, stop.signal));
    ptrace(PTRACE_CONT, tid, 0, 0);
  }
}

/**
 * For a restored task (forRestoredTask), a call that would resume from its restart block
 * (nanosleep, poll or futex with a timeout, ...): the new task has none, and restart_syscall
 * would fail with EINTR there. So the call is marked -ERESTARTNOHAND: the kernel runs it again
 * from its own arguments, which are still in its registers (an absolute deadline holds, a
 * relative timeout starts over), or fails it with EINTR for a signal whose handler runs, as it
 * would have. A call that was itself resuming from a restart block (orig_rax = restart_syscall,
 * e.g. after an earlier dump) does not tell what it was: it returns EINTR, as CRIU's restore does
 * for all.
 */
function withoutRestartBlock(saved: UserRegs): UserRegs {
  return { ...saved, rax: saved.orig_rax === BigInt(SYS.restart_syscall) ? -BigInt(EINTR) : ERESTARTNOHAND };
}

/**
 * Waits between polls of stops: none at first, as a thread stops again within microseconds of an
 * injected syscall, well before the shortest sleep would end (timer slack alone is 50 µs) and a
 * snapshot runs several injections per thread; then 20 µs, doubling up to 1 ms.
 */
class PollPacer {
  private polls = 0;
  private pauseUs = 20;

  progressed(): void {
    this.polls = 0;
    this.pauseUs = 20;
  }

  idle(): void {
    if (++this.polls < EAGER_POLLS) return;
    usleep(this.pauseUs);
    this.pauseUs = Math.min(this.pauseUs * 2, 1000);
  }
}
const EAGER_POLLS = 200;

function awaitStop(tid: number, deadline: number): { signal: number; event: number } {
  const pacer = new PollPacer();
  for (;;) {
    const result = waitpid(tid, __WALL | WNOHANG);
    if (result.kind === 'stopped') return result;
    if (result.kind !== 'none') throw nativeError(ESRCH, `inject(${tid})`, `thread ${tid} exited during a syscall injection`);
    if (performance.now() > deadline) {
      throw nativeError(ETIMEDOUT, `inject(${tid})`, `thread ${tid} did not finish an injected syscall within ${INJECT_TIMEOUT_MS} ms`);
    }
    pacer.idle();
  }
}

/** After a failed injection: stop the thread again if it runs, and give it its registers back. */
function recover(tid: number, saved: UserRegs, heldSignals: Buffer[]): void {
  try {
    ptrace(PTRACE_INTERRUPT, tid);
    const stop = awaitStop(tid, performance.now() + INJECT_TIMEOUT_MS);
    if (stop.event === 0 && stop.signal !== SYSCALL_STOP_SIGNAL) heldSignals.push(takenSignal(tid, stop.signal));
    // In a trap stop the kernel restarts an interrupted call itself; elsewhere it must be rewound.
    setRegs(tid, stop.event === PTRACE_EVENT_STOP ? saved : withSyscallRestarted(saved));
  } catch {
    // Gone, or beyond our reach: release() detaches it once it stops, if it ever does.
  }
}

/**
 * After an injection that failed before the thread was sent on: it is still in its stop, where
 * waiting for another (recover) would wait in vain; only its registers may have been changed.
 */
function putBack(tid: number, saved: UserRegs): void {
  try {
    setRegs(tid, saved);
  } catch {
    // Gone: nothing to give back.
  }
}

/** Gives the thread its own signal mask back, once it is in a stop again. */
function restoreMask(tid: number, mask: bigint): void {
  try {
    setSignalMask(tid, mask);
  } catch {
    // Gone, or not stopped (a failure left it running): release() detaches it as it is.
  }
}

/** Queues the held-back signals again: the thread takes them when it runs on. */
function requeue(tid: number, heldSignals: Buffer[]): void {
  if (heldSignals.length === 0) return;
  try {
    const tgid = statusNumber(readFileSync(`/proc/${tid}/status`, 'latin1'), 'Tgid');
    for (const info of heldSignals) queueSignalAgain(tgid, tid, info);
  } catch {
    // The thread is gone: nobody is left to take them.
  }
}

const SYSCALL_BYTES = Buffer.from([0x0f, 0x05]);

/**
 * The `syscall` the thread just ran (at rip - 2: it was stopped in a system call) or will run again
 * (at rip: an earlier injection rewound it for a restart). Its page is present, so running it
 * faults nothing in, unlike a borrowed one.
 */
function ownSyscallInstruction(tid: number, rip: bigint): number | null {
  const ip = Number(BigInt.asUintN(64, rip));
  for (const site of [ip - 2, ip]) {
    const samePage = Math.floor(site / PAGE_SIZE) === Math.floor((site + 1) / PAGE_SIZE);
    if (samePage && Math.floor(site / PAGE_SIZE) === Math.floor(ip / PAGE_SIZE) && holdsSyscall(tid, site)) return site;
  }
  return null;
}

function holdsSyscall(tid: number, address: number): boolean {
  try {
    return readMemory(tid, address, 2).equals(SYSCALL_BYTES);
  } catch {
    return false;
  }
}

/** Address of a `syscall` instruction in the process of tid, by tid. */
const syscallInstructions = new Map<number, number>();
const MAX_CACHED_SITES = 4096;

function syscallInstruction(tid: number): number {
  const cached = syscallInstructions.get(tid);
  // A reused tid is another process: the cached address is trusted only if it still holds one.
  if (cached !== undefined && holdsSyscall(tid, cached)) return cached;
  const site = findSyscallInstruction(tid);
  if (syscallInstructions.size >= MAX_CACHED_SITES) syscallInstructions.clear();
  syscallInstructions.set(tid, site);
  return site;
}

/**
 * One in the [vdso], which every process has unless it unmapped it (a sandbox, say): then one in
 * its executable mappings (its libc's), read in page-sized pieces, as an instruction (0f 05) may
 * straddle two.
 */
function findSyscallInstruction(tid: number): number {
  const maps = readFileSync(`/proc/${tid}/maps`, 'latin1');
  const vdso = /^([0-9a-f]+)-([0-9a-f]+) .*\[vdso\]$/m.exec(maps);
  const executable = [...maps.matchAll(/^([0-9a-f]+)-([0-9a-f]+) r-x/gm)];
  for (const [, from, to] of vdso ? [vdso, ...executable] : executable) {
    const start = parseInt(from, 16);
    const end = parseInt(to, 16);
    for (let at = start; at < end; at += PAGE_SIZE) {
      let bytes: Buffer;
      try {
        bytes = readMemory(tid, at, Math.min(PAGE_SIZE + 1, end - at));
      } catch (err) {
        if (err instanceof NativeError && err.errno === ESRCH) throw err;
        break; // a mapping beyond its file's end, say: the next one
      }
      const offset = bytes.indexOf(SYSCALL_BYTES);
      if (offset >= 0) return at + offset;
    }
  }
  throw nativeError(EIO, `inject(${tid})`, `thread ${tid}'s process has no syscall instruction (0f 05) in any executable mapping to borrow`);
}
