// Calls that a stop alone makes fail with EINTR. A few blocking calls do not restart after the
// task was stopped and resumed, even with no signal for the task to handle (signal(7),
// "Interruption of system calls and library functions by stop signals"): a freeze's
// PTRACE_INTERRUPT wakes them, they return -EINTR, and the program would see EINTR for nothing
// (a service that takes EINTR from semop for fatal would die of a `cp` of its dump).

import { type UserRegs } from '../model.js';

const EINTR = 4n;
/** The kernel's restart code for "run the call again unless a handler runs": then EINTR. */
const ERESTARTNOHAND = -514n;

/**
 * x86_64 numbers of the calls signal(7) lists (and their newer variants): epoll_wait,
 * epoll_pwait, epoll_pwait2; semop, semtimedop; rt_sigtimedwait (sigwaitinfo, sigtimedwait);
 * io_getevents (io_pgetevents restarts by itself); and the socket calls that fail so with a
 * timeout set (SO_RCVTIMEO, SO_SNDTIMEO): accept, accept4, recvfrom, recvmsg, recvmmsg, sendto,
 * sendmsg, sendmmsg. Not connect, which an interrupted connect may not run again as it was.
 */
const EINTR_AFTER_STOP = new Set([232, 281, 441, 65, 220, 128, 208, 43, 288, 45, 47, 299, 44, 46, 307]);

/**
 * The registers of a thread held in a stop on its way out of a system call, with an EINTR that
 * the stop caused made -ERESTARTNOHAND: released, the kernel's restart logic then runs the call
 * again, or still fails it with EINTR when a signal whose handler runs comes with the release,
 * as that signal would have made it fail anyway. Other registers: as they are (null: unchanged).
 */
export function restartingStopInterrupted(regs: UserRegs): UserRegs | null {
  const call = BigInt.asIntN(64, regs.orig_rax);
  if (call < 0n || BigInt.asIntN(64, regs.rax) !== -EINTR || !EINTR_AFTER_STOP.has(Number(call))) return null;
  return { ...regs, rax: ERESTARTNOHAND };
}
