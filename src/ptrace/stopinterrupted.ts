// Calls that a stop alone makes fail with EINTR. A few blocking calls do not restart after the
// task was stopped and resumed, even with no signal for the task to handle (signal(7),
// "Interruption of system calls and library functions by stop signals"): a freeze's
// PTRACE_INTERRUPT wakes them, they return -EINTR, and the program would see EINTR for nothing
// (a service that takes EINTR from semop for fatal would die of a `cp` of its dump).
//
// Run again, a call starts its relative timeout over: a loop of epoll_wait(1500 ms) dumped every
// second would never time out, a heartbeat never beat. So a call with a deadline of its own keeps
// its EINTR, which a loop with a timeout handles anyway (signals give it the same), and only a
// wait without a deadline is run again. A socket's SO_RCVTIMEO/SO_SNDTIMEO is not in the call's
// arguments: such a call is run again, its timeout started over (where an EINTR could cost a
// connection its program takes for broken).

import { type UserRegs } from '../model.js';

const EINTR = 4n;
/** The kernel's restart code for "run the call again unless a handler runs": then EINTR. */
const ERESTARTNOHAND = -514n;
const IORING_ENTER_EXT_ARG = 8n;

const always = () => true;
const isNull = (pointer: bigint) => pointer === 0n;
/** epoll_wait's timeout argument: an int, negative for none. */
const noTimeoutMs = (timeout: bigint) => BigInt.asIntN(32, timeout) < 0n;

/**
 * x86_64 numbers of the calls signal(7) lists (and their newer variants), with whether a call
 * waits without a deadline: epoll_wait and epoll_pwait (timeout -1), epoll_pwait2 (no timespec);
 * semop, semtimedop (no timespec); rt_sigtimedwait (sigwaitinfo: no timespec); io_getevents (no
 * timespec; io_pgetevents restarts by itself); io_uring_enter (no extended argument, which may
 * hold a timeout); the socket calls that fail so with a timeout set: accept, accept4, recvfrom,
 * recvmsg, recvmmsg, sendto, sendmsg, sendmmsg, and read, write, readv, writev on a socket (a
 * read or write elsewhere that returns EINTR has transferred nothing either). Not connect, which
 * an interrupted connect may not run again as it was.
 */
const WAITS_WITHOUT_DEADLINE = new Map<number, (regs: UserRegs) => boolean>([
  [232, (r) => noTimeoutMs(r.r10)], [281, (r) => noTimeoutMs(r.r10)], [441, (r) => isNull(r.r10)],
  [65, always], [220, (r) => isNull(r.r10)],
  [128, (r) => isNull(r.rdx)],
  [208, (r) => isNull(r.r8)],
  [426, (r) => (r.r10 & IORING_ENTER_EXT_ARG) === 0n],
  ...[43, 288, 45, 47, 299, 44, 46, 307, 0, 1, 19, 20].map((nr): [number, () => boolean] => [nr, always]),
]);

/**
 * The registers of a thread held in a stop on its way out of a system call, with an EINTR that
 * the stop caused made -ERESTARTNOHAND: released, the kernel's restart logic then runs the call
 * again, or still fails it with EINTR when a signal whose handler runs comes with the release,
 * as that signal would have made it fail anyway. Other registers: as they are (null: unchanged).
 */
export function restartingStopInterrupted(regs: UserRegs): UserRegs | null {
  const call = BigInt.asIntN(64, regs.orig_rax);
  if (call < 0n || BigInt.asIntN(64, regs.rax) !== -EINTR) return null;
  const waitsWithoutDeadline = WAITS_WITHOUT_DEADLINE.get(Number(call));
  return waitsWithoutDeadline?.(regs) ? { ...regs, rax: ERESTARTNOHAND } : null;
}
