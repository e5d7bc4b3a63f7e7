// Filling a traced task's missing anonymous pages through a userfaultfd of its memory.
// UFFDIO_COPY allocates each page and copies into it in one step, where any other write into a
// missing page (process_vm_writev, /proc/<pid>/mem, the task itself) has the kernel zero a fresh
// page first and copy over it after: on this machine the zeroing was half of a restore's CPU time.
// A userfaultfd serves the memory of the process that creates it, so the task creates it in an
// injected call and pidfd_getfd hands us a descriptor of it (the task's own is closed at once).
// Registered ranges raise SIGBUS (EFAULT for the kernel's own accesses) on a missing page instead
// of waiting for a handler: a stray access fails, it never hangs. Once ours is closed too, the
// kernel gives the ranges back to ordinary faults.

import koffi from 'koffi';
import { closeSync } from 'node:fs';
import { constants } from 'node:os';
import { NativeError } from './errors.js';
import { nativeError, rawIoctl, takeDescriptor } from './libc.js';
import { O_CLOEXEC, type RemoteTask } from './remote.js';

const UFFD_API = 0xaan;
const UFFD_FEATURE_SIGBUS = 0x80n;
/** _IOWR(0xAA, 0x3F, struct uffdio_api { u64 api, features, ioctls }). */
export const UFFDIO_API = 0xc018aa3f;
/** _IOWR(0xAA, 0x00, struct uffdio_register { u64 start, len, mode, ioctls }). */
export const UFFDIO_REGISTER = 0xc020aa00;
const UFFDIO_COPY = 0xc028aa03;
export const UFFDIO_REGISTER_MODE_MISSING = 1;
export const UFFDIO_REGISTER_MODE_WP = 2;
/** Nothing waits on these pages: skip the wake-up. */
const UFFDIO_COPY_MODE_DONTWAKE = 1n;
/** struct uffdio_copy: dst, src, len, mode, then copy (bytes copied, or -errno) at this offset. */
const COPY_RESULT = 32;
/** In copy until the kernel answers: it leaves copy alone when it refuses the arguments outright. */
const NO_ANSWER = -(2n ** 62n);

const hex = (v: number): string => `0x${v.toString(16)}`;

/** struct uffdio_api asking for features. */
export function uffdioApi(features: bigint): Buffer {
  const api = Buffer.alloc(24);
  api.writeBigUInt64LE(UFFD_API, 0);
  api.writeBigUInt64LE(features, 8);
  return api;
}

/** struct uffdio_register of [start, start + length) in mode (UFFDIO_REGISTER_MODE_*). */
export function uffdioRegister(start: number, length: number, mode: number): Buffer {
  const register = Buffer.alloc(32);
  register.writeBigUInt64LE(BigInt(start), 0);
  register.writeBigUInt64LE(BigInt(length), 8);
  register.writeBigUInt64LE(BigInt(mode), 16);
  return register;
}

export class Userfault {
  private constructor(private fd: number, private readonly pid: number) {}

  /**
   * A userfaultfd of the traced task's memory, or null when this kernel or its configuration
   * refuses one (no userfaultfd or pidfd_getfd, a seccomp filter, no SIGBUS mode): pages then
   * have to be written another way. The task keeps no descriptor of it.
   */
  static open(remote: RemoteTask): Userfault | null {
    let taskFd: number;
    try {
      taskFd = remote.userfaultfd(O_CLOEXEC);
    } catch (err) {
      if (err instanceof NativeError && err.errno !== constants.errno.ESRCH) return null;
      throw err;
    }
    let fd: number;
    try {
      fd = takeDescriptor(remote.tid, taskFd);
    } finally {
      remote.close(taskFd);
    }
    if (fd < 0) return null;
    if (rawIoctl(fd, UFFDIO_API, uffdioApi(UFFD_FEATURE_SIGBUS)) !== 0) {
      closeSync(fd);
      return null;
    }
    return new Userfault(fd, remote.tid);
  }

  /** Routes missing-page faults of [start, start + length) here: UFFDIO_COPY may fill them. */
  register(start: number, length: number): void {
    this.ioctl(UFFDIO_REGISTER, uffdioRegister(start, length, UFFDIO_REGISTER_MODE_MISSING), `UFFDIO_REGISTER(${hex(start)}, ${length})`);
  }

  /**
   * Fills the missing pages [dst, dst + length) of a registered range with the bytes at our
   * address src, on one of koffi's worker threads (the kernel needs no tracer thread for it).
   * The memory at src must stay untouched until the promise settles.
   */
  async copy(dst: number, src: number, length: number): Promise<void> {
    const args = copyArgs(dst, src, length);
    do {
      await new Promise<void>((resolve, reject) => {
        rawIoctl.async(this.fd, UFFDIO_COPY, args, (err: unknown) => (err ? reject(err) : resolve()));
      });
    } while (this.copyGoesOn(args, dst, length));
  }

  /** As copy, on this thread: for short runs, where a worker's hand-off costs more than the copy. */
  copyNow(dst: number, src: number, length: number): void {
    const args = copyArgs(dst, src, length);
    do rawIoctl(this.fd, UFFDIO_COPY, args);
    while (this.copyGoesOn(args, dst, length));
  }

  /** Closing the last descriptor of it gives every registered range back to ordinary faults. */
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private ioctl(request: number, args: Buffer, what: string): void {
    if (rawIoctl(this.fd, request, args) !== 0) throw nativeError(koffi.errno(), `${what} of pid ${this.pid}`);
  }

  /**
   * After one UFFDIO_COPY: false when all of it is done; true, with args moved past what was
   * copied, when the kernel stopped early and asks to go on (EAGAIN, or a partial copy).
   */
  private copyGoesOn(args: Buffer, dst: number, length: number): boolean {
    const answer = args.readBigInt64LE(COPY_RESULT);
    const at = Number(args.readBigUInt64LE(0));
    const left = Number(args.readBigUInt64LE(16));
    const what = `UFFDIO_COPY(${hex(dst)}, ${length}) of pid ${this.pid}`;
    if (answer === NO_ANSWER) throw nativeError(constants.errno.EINVAL, what, `refused at ${hex(at)}: the task is gone or the range is not registered`);
    const result = Number(answer);
    if (result === left) return false;
    if (result < 0 && result !== -constants.errno.EAGAIN) throw nativeError(-result, what, `at ${hex(at)}`);
    const done = Math.max(result, 0);
    args.writeBigUInt64LE(BigInt(at + done), 0);
    args.writeBigUInt64LE(args.readBigUInt64LE(8) + BigInt(done), 8);
    args.writeBigUInt64LE(BigInt(left - done), 16);
    args.writeBigInt64LE(NO_ANSWER, COPY_RESULT);
    return true;
  }
}

function copyArgs(dst: number, src: number, length: number): Buffer {
  const args = Buffer.alloc(40);
  args.writeBigUInt64LE(BigInt(dst), 0);
  args.writeBigUInt64LE(BigInt(src), 8);
  args.writeBigUInt64LE(BigInt(length), 16);
  args.writeBigUInt64LE(UFFDIO_COPY_MODE_DONTWAKE, 24);
  args.writeBigInt64LE(NO_ANSWER, COPY_RESULT);
  return args;
}
