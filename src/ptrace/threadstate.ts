// Per-thread kernel state that ptrace reads straight from a thread in a ptrace stop, without
// making it run anything: its rseq registration, its queues of pending signals, its signal mask,
// the signal it is stopped for.

import koffi from 'koffi';
import { ptraceBuffer, SI_TKILL } from './libc.js';
import { SIGINFO_SIZE } from './syscalls.js';

const PTRACE_GET_RSEQ_CONFIGURATION = 0x420f;
/** struct ptrace_rseq_configuration: u64 rseq_abi_pointer, u32 rseq_abi_size, u32 signature, u32 flags, u32 pad. */
const RSEQ_CONFIGURATION_SIZE = 24;
const PTRACE_PEEKSIGINFO = 0x4209;
const PTRACE_PEEKSIGINFO_SHARED = 1;
/** struct ptrace_peeksiginfo_args: u64 off, u32 flags, s32 nr. */
const PEEKSIGINFO_ARGS_SIZE = 16;
const PEEK_BATCH = 64;
const PTRACE_GETSIGMASK = 0x420a;
const PTRACE_SETSIGMASK = 0x420b;
const PTRACE_GETSIGINFO = 0x4202;
const SIGSET_SIZE = 8;

export interface RseqConfiguration {
  /** 0: the thread has no rseq area registered. */
  address: number;
  length: number;
  signature: number;
}

/** The thread's rseq registration (Linux 5.13+). */
export function getRseqConfiguration(tid: number): RseqConfiguration {
  const config = Buffer.alloc(RSEQ_CONFIGURATION_SIZE);
  ptraceBuffer(PTRACE_GET_RSEQ_CONFIGURATION, tid, config.length, config);
  return { address: Number(config.readBigUInt64LE(0)), length: config.readUInt32LE(8), signature: config.readUInt32LE(12) };
}

/**
 * The siginfo of every signal queued and not yet delivered, oldest first: the thread's own queue,
 * or (shared) the queue of its whole thread group. A signal the kernel pends without a queue
 * entry (SIGKILL, or one sent while the queue was full) is not listed.
 */
export function peekPendingSignals(tid: number, shared: boolean): Buffer[] {
  const args = Buffer.alloc(PEEKSIGINFO_ARGS_SIZE);
  const batch = Buffer.alloc(PEEK_BATCH * SIGINFO_SIZE);
  const signals: Buffer[] = [];
  for (;;) {
    args.writeBigUInt64LE(BigInt(signals.length), 0);
    args.writeUInt32LE(shared ? PTRACE_PEEKSIGINFO_SHARED : 0, 8);
    args.writeInt32LE(PEEK_BATCH, 12);
    const count = ptraceBuffer(PTRACE_PEEKSIGINFO, tid, koffi.address(args), batch);
    for (let i = 0; i < count; i++) signals.push(Buffer.from(batch.subarray(i * SIGINFO_SIZE, (i + 1) * SIGINFO_SIZE)));
    if (count < PEEK_BATCH) return signals;
  }
}

/**
 * The thread's signal mask as its program set it. A thread waiting in sigsuspend, ppoll, pselect
 * or epoll_pwait waits with the mask it passed, and gets its own back on return: the kernel
 * gives that one here (SigBlk in /proc shows the one it waits with).
 */
export function getSignalMask(tid: number): bigint {
  const mask = Buffer.alloc(SIGSET_SIZE);
  ptraceBuffer(PTRACE_GETSIGMASK, tid, SIGSET_SIZE, mask);
  return mask.readBigUInt64LE(0);
}

/** Sets a thread's signal mask directly (bit n-1 = signal n), as getSignalMask reads it. */
export function setSignalMask(tid: number, mask: bigint): void {
  const set = Buffer.alloc(SIGSET_SIZE);
  set.writeBigUInt64LE(BigInt.asUintN(64, mask));
  ptraceBuffer(PTRACE_SETSIGMASK, tid, SIGSET_SIZE, set);
}

/**
 * The siginfo of the signal thread tid is in a signal-delivery-stop for (PTRACE_GETSIGINFO): what a
 * handler of it reads (sender, sigqueue's value, a timer's id). One holding the signal number alone
 * where the kernel has none to give.
 */
export function takenSignal(tid: number, signal: number): Buffer {
  const stoppedFor = signalStopInfo(tid);
  if (stoppedFor?.readInt32LE(0) === signal) return stoppedFor;
  const info = Buffer.alloc(SIGINFO_SIZE);
  info.writeInt32LE(signal, 0);
  info.writeInt32LE(SI_TKILL, 8);
  return info;
}

/** The siginfo of the stop thread tid is in (PTRACE_GETSIGINFO), null where the kernel has none. */
export function signalStopInfo(tid: number): Buffer | null {
  const info = Buffer.alloc(SIGINFO_SIZE);
  try {
    ptraceBuffer(PTRACE_GETSIGINFO, tid, 0, info);
    return info;
  } catch {
    return null;
  }
}
