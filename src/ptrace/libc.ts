// Thin typed wrappers over the libc calls the native layer needs. Every wrapper runs
// synchronously on the calling thread (ptrace and waitpid must, see freeze.ts) and turns a -1
// return into a NativeError carrying errno.

import koffi from 'koffi';
import { closeSync } from 'node:fs';
import { constants } from 'node:os';
import { SOL_SOCKET, type ResourceLimit } from '../extension-model.js';
import { NativeError } from './errors.js';
import { FIONREAD, SOCK_CLOEXEC, SYS } from './syscalls.js';

/** The C library, loaded once for every module that calls into it. */
export const libc = koffi.load('libc.so.6');

// glibc's ptrace is variadic; on x86_64 that passes integer arguments exactly like these fixed
// prototypes do. Two prototypes: data as a number (signal, options) or as a buffer we own.
const rawPtrace = libc.func('long ptrace(long request, int pid, uintptr_t addr, uintptr_t data)');
const rawPtraceBuffer = libc.func('long ptrace(long request, int pid, uintptr_t addr, void *data)');
const rawWaitpid = libc.func('int waitpid(int pid, void *status, int options)');
const rawProcessVmReadv = libc.func(
  'intptr_t process_vm_readv(int pid, void *local, unsigned long liovcnt, void *remote, unsigned long riovcnt, unsigned long flags)',
);
const rawReadv = libc.func('intptr_t readv(int fd, void *iov, int iovcnt)');
const rawPreadv = libc.func('intptr_t preadv(int fd, void *iov, int iovcnt, int64_t offset)');
const rawPoll = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
const rawTgkill = libc.func('int tgkill(int tgid, int tid, int sig)');
const rawUsleep = libc.func('int usleep(uint32_t usec)');
const rawStrerror = libc.func('const char *strerror(int errnum)');
const rawPrlimit = libc.func('int prlimit(int pid, int resource, void *newLimit, void *oldLimit)');
/** syscall(2): arguments as (type, value) pairs, koffi's way for a variadic function; returns -1 with errno set on failure. */
export const rawSyscall = libc.func('long syscall(long number, ...)');
const rawGetsockopt = libc.func('int getsockopt(int fd, int level, int name, void *value, void *length)');
const rawGetsockname = libc.func('int getsockname(int fd, void *address, void *length)');
const rawGetpeername = libc.func('int getpeername(int fd, void *address, void *length)');
const rawSocket = libc.func('int socket(int domain, int type, int protocol)');
const rawClockGettime = libc.func('int clock_gettime(int clock, void *time)');
const rawFcntl = libc.func('int fcntl(int fd, int command, int arg)');
const rawIoctlInt = libc.func('int ioctl(int fd, unsigned long request, _Out_ int *value)');
/** ioctl(2) with a buffer argument (koffi passes a Buffer as its pointer); returns -1 with errno set on failure. */
export const rawIoctl = libc.func('int ioctl(int fd, unsigned long request, void *argument)');
const rawRecv = libc.func('intptr_t recv(int fd, void *buf, size_t length, int flags)');
const rawSend = libc.func('intptr_t send(int fd, void *buf, size_t length, int flags)');
const rawSetsockopt = libc.func('int setsockopt(int fd, int level, int name, void *value, uint32_t length)');
const KCMP_FILE = 0;

export const PTRACE_CONT = 7;
export const PTRACE_GETREGS = 12;
export const PTRACE_SETREGS = 13;
export const PTRACE_DETACH = 17;
export const PTRACE_SYSCALL = 24;
export const PTRACE_GET_THREAD_AREA = 25;
export const PTRACE_SET_THREAD_AREA = 26;
export const PTRACE_SETOPTIONS = 0x4200;
export const PTRACE_GETREGSET = 0x4204;
export const PTRACE_SETREGSET = 0x4205;
export const PTRACE_SEIZE = 0x4206;
export const PTRACE_INTERRUPT = 0x4207;
const PTRACE_GETEVENTMSG = 0x4201;

export const PTRACE_O_TRACESYSGOOD = 1;
/** A child the tracee forks (PTRACE_O_TRACEFORK) or clones (PTRACE_O_TRACECLONE) is traced by us too. */
export const PTRACE_O_TRACEFORK = 0x02;
export const PTRACE_O_TRACECLONE = 0x08;
/** status >> 16 of the stop in which the tracee reports a child it forked or cloned. */
export const PTRACE_EVENT_FORK = 1;
export const PTRACE_EVENT_CLONE = 3;
/** Seccomp filters do not judge the tracee's system calls while we trace it (needs CAP_SYS_ADMIN). */
export const PTRACE_O_SUSPEND_SECCOMP = 0x200000;
/** status >> 16 of a stop caused by PTRACE_INTERRUPT or a group-stop of a seized tracee. */
export const PTRACE_EVENT_STOP = 128;
/** The stop signal of a syscall-stop once PTRACE_O_TRACESYSGOOD is set: SIGTRAP | 0x80. */
export const SYSCALL_STOP_SIGNAL = 0x85;

export const WNOHANG = 1;
export const __WALL = 0x40000000;

const requestNames = new Map<number, string>([
  [PTRACE_CONT, 'PTRACE_CONT'], [PTRACE_GETREGS, 'PTRACE_GETREGS'], [PTRACE_SETREGS, 'PTRACE_SETREGS'],
  [PTRACE_DETACH, 'PTRACE_DETACH'], [PTRACE_SYSCALL, 'PTRACE_SYSCALL'],
  [PTRACE_GET_THREAD_AREA, 'PTRACE_GET_THREAD_AREA'], [PTRACE_SETOPTIONS, 'PTRACE_SETOPTIONS'],
  [PTRACE_GETREGSET, 'PTRACE_GETREGSET'], [PTRACE_SETREGSET, 'PTRACE_SETREGSET'],
  [PTRACE_SEIZE, 'PTRACE_SEIZE'], [PTRACE_INTERRUPT, 'PTRACE_INTERRUPT'],
]);

export function strerror(errno: number): string {
  return rawStrerror(errno) as string;
}

/** A NativeError whose message is `call: <strerror(errno)>[: detail]`. */
export function nativeError(errno: number, call: string, detail?: string): NativeError {
  return new NativeError(errno, call, detail === undefined ? strerror(errno) : `${strerror(errno)}: ${detail}`);
}

/** A libc call's result, or the NativeError its -1 stands for (call: what to name it). */
export function check(result: number, call: () => string): number {
  if (result === -1) throw nativeError(koffi.errno(), call());
  return result;
}

const ptraceCall = (request: number, pid: number) => () => `ptrace(${requestNames.get(request) ?? request}, ${pid})`;

/** ptrace with integer addr and data (data: a signal number, options, ...); returns what ptrace returns. */
export function ptrace(request: number, pid: number, addr: number | bigint = 0, data: number | bigint = 0): number {
  return check(Number(rawPtrace(request, pid, addr, data)), ptraceCall(request, pid));
}

/** ptrace whose data points to a buffer the kernel reads or fills; returns what ptrace returns. */
export function ptraceBuffer(request: number, pid: number, addr: number | bigint, data: Buffer | Uint32Array): number {
  return check(Number(rawPtraceBuffer(request, pid, addr, data)), ptraceCall(request, pid));
}

/** The new child's tid (in our pid namespace) at a PTRACE_EVENT_FORK or PTRACE_EVENT_CLONE stop. */
export function ptraceEventMessage(tid: number): number {
  const message = Buffer.alloc(8);
  ptraceBuffer(PTRACE_GETEVENTMSG, tid, 0, message);
  return Number(message.readBigUInt64LE(0));
}

/**
 * Orders descriptors a and b of process pid by their open file description (kcmp KCMP_FILE): 0
 * when they are one (a dup of the other), else -1 or 1, the kernel's order of the two, consistent
 * for a sort. When the kernel cannot tell (no kcmp, a descriptor gone): their numbers' order.
 */
export function compareOpenFiles(pid: number, a: number, b: number): number {
  const order = Number(rawSyscall(SYS.kcmp, 'int', pid, 'int', pid, 'int', KCMP_FILE, 'unsigned long', a, 'unsigned long', b));
  return order === 0 ? 0 : order === 1 ? -1 : order === 2 ? 1 : a - b;
}

/**
 * A thread's robust futex list (head address and length), which get_robust_list answers for any
 * thread its caller may ptrace: no call injected into the thread.
 */
export function getRobustList(tid: number): { head: number; len: number } {
  const head = Buffer.alloc(8);
  const len = Buffer.alloc(8);
  check(Number(rawSyscall(SYS.get_robust_list, 'int', tid, 'void *', head, 'void *', len)), () => `get_robust_list(${tid})`);
  return { head: Number(head.readBigUInt64LE(0)), len: Number(len.readBigUInt64LE(0)) };
}

/**
 * Our own descriptor of pid's descriptor taskFd (pidfd_getfd, which needs the right to ptrace
 * pid), or -1 when this kernel or the task refuses one.
 */
export function takeDescriptor(pid: number, taskFd: number): number {
  const pidfd = Number(rawSyscall(SYS.pidfd_open, 'int', pid, 'unsigned int', 0));
  if (pidfd < 0) return -1;
  try {
    return Number(rawSyscall(SYS.pidfd_getfd, 'int', pidfd, 'int', taskFd, 'unsigned int', 0));
  } finally {
    closeSync(pidfd);
  }
}

/** An int socket option (getsockopt). */
export function getsockoptInt(fd: number, level: number, name: number): number {
  const value = new Int32Array(1);
  const length = new Uint32Array([4]);
  check(rawGetsockopt(fd, level, name, value, length) as number, () => `getsockopt(${fd}, ${level}, ${name})`);
  return value[0];
}

/** A socket option's bytes, at most max of them; null where the socket has no such option (getsockopt fails). */
export function getsockoptBytes(fd: number, level: number, name: number, max: number): Buffer | null {
  const value = Buffer.alloc(max);
  const length = new Uint32Array([max]);
  if ((rawGetsockopt(fd, level, name, value, length) as number) !== 0) return null;
  return value.subarray(0, Math.min(length[0], max));
}

/** sizeof(struct sockaddr_storage): room for any family's address. */
const SOCKADDR_STORAGE_SIZE = 128;

/** The struct sockaddr a socket is bound to (getsockname); for an unbound Unix socket, its family alone. */
export function getsockname(fd: number): Buffer {
  const address = Buffer.alloc(SOCKADDR_STORAGE_SIZE);
  const length = new Uint32Array([address.length]);
  check(rawGetsockname(fd, address, length) as number, () => `getsockname(${fd})`);
  return address.subarray(0, Math.min(length[0], address.length));
}

/** Whether a socket is connected to a peer (getpeername answers, where an unconnected one is ENOTCONN). */
export function hasPeer(fd: number): boolean {
  const address = Buffer.alloc(SOCKADDR_STORAGE_SIZE);
  return (rawGetpeername(fd, address, new Uint32Array([address.length])) as number) === 0;
}

/** A new socket of ours (close-on-exec), closed with closeSync. */
export function openSocket(family: number, type: number, protocol: number): number {
  return check(rawSocket(family, type | SOCK_CLOEXEC, protocol) as number, () => `socket(${family}, ${type}, ${protocol})`);
}

/** send(2) of a whole datagram on one of our sockets; returns the bytes sent. */
export function sendDatagram(fd: number, datagram: Buffer, what: string): number {
  return check(Number(rawSend(fd, datagram, datagram.length, 0)), () => `send(${what})`);
}

/** recv(2) of the next datagram on one of our sockets, waiting for it; returns its length. */
export function receiveDatagram(fd: number, buffer: Buffer, what: string): number {
  return check(Number(rawRecv(fd, buffer, buffer.length, 0)), () => `recv(${what})`);
}

const MSG_PEEK = 2;
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const SO_PEEK_OFF = 42;
/** Larger than any datagram a Unix socket takes with the default buffer sizes. */
const MESSAGE_MAX = 1 << 20;
/** More messages than any socket's buffer holds. */
const MESSAGES_MAX = 1 << 16;

/**
 * What waits to be read from a Unix socket, without taking it: a stream socket's bytes as one
 * (MSG_PEEK reads on across its queued messages, up to one that carries descriptors); a datagram
 * or seqpacket socket's messages one by one, stepping with SO_PEEK_OFF, which is put back as it
 * was. Null when they cannot all be told apart: a message larger than MESSAGE_MAX, or an empty
 * one, which the peek offset cannot step past.
 */
export function peekQueued(fd: number, stream: boolean): Buffer[] | null {
  const length = [0];
  check(rawIoctlInt(fd, FIONREAD, length) as number, () => `ioctl(${fd}, FIONREAD)`);
  if (length[0] <= 0) return [];
  if (stream) {
    const bytes = Buffer.alloc(length[0]);
    const got = Number(rawRecv(fd, bytes, bytes.length, MSG_PEEK | MSG_DONTWAIT));
    return got > 0 ? [bytes.subarray(0, got)] : [];
  }
  const offset = getsockoptInt(fd, SOL_SOCKET, SO_PEEK_OFF);
  setsockoptInt(fd, SOL_SOCKET, SO_PEEK_OFF, 0);
  try {
    const messages: Buffer[] = [];
    const buffer = Buffer.alloc(MESSAGE_MAX);
    while (messages.length < MESSAGES_MAX) {
      const got = Number(rawRecv(fd, buffer, buffer.length, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC));
      if (got < 0) return messages;
      if (got === 0 || got > buffer.length) return null;
      messages.push(Buffer.from(buffer.subarray(0, got)));
    }
    return null;
  } finally {
    setsockoptInt(fd, SOL_SOCKET, SO_PEEK_OFF, offset);
  }
}

function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  check(rawSetsockopt(fd, level, name, new Int32Array([value]), 4) as number, () => `setsockopt(${fd}, ${level}, ${name})`);
}

export const F_GET_SEALS = 1034;

/** fcntl with an int argument; returns its answer. */
export function fcntlInt(fd: number, command: number, arg: number): number {
  return check(rawFcntl(fd, command, arg) as number, () => `fcntl(${fd}, ${command})`);
}

export const CLOCK_MONOTONIC = 1;
export const CLOCK_BOOTTIME = 7;

/** A clock's time in nanoseconds (clock_gettime). */
export function clockNow(clock: number): bigint {
  const time = Buffer.alloc(16);
  check(rawClockGettime(clock, time) as number, () => `clock_gettime(${clock})`);
  return time.readBigInt64LE(0) * 1_000_000_000n + time.readBigInt64LE(8);
}

export type WaitResult =
  /** WNOHANG and nothing to report yet. */
  | { kind: 'none' }
  /** A ptrace stop: event is status >> 16 (0 for a signal-delivery-stop or syscall-stop). */
  | { kind: 'stopped'; signal: number; event: number }
  | { kind: 'exited'; code: number }
  | { kind: 'killed'; signal: number };

const statusWord = new Int32Array(1);

export function waitpid(pid: number, options: number): WaitResult {
  const got = check(rawWaitpid(pid, statusWord, options) as number, () => `waitpid(${pid})`);
  if (got === 0) return { kind: 'none' };
  const status = statusWord[0];
  if ((status & 0xff) === 0x7f) return { kind: 'stopped', signal: (status >> 8) & 0xff, event: status >>> 16 };
  if ((status & 0x7f) === 0) return { kind: 'exited', code: (status >> 8) & 0xff };
  return { kind: 'killed', signal: status & 0x7f };
}

/**
 * process_vm_readv with iovec arrays as pairs of u32 words (base low, base high, len low, len
 * high). Returns the bytes read, which may be fewer than asked when a remote range faults.
 */
export function processVmReadv(pid: number, local: Uint32Array, localCount: number, remote: Uint32Array, remoteCount: number): number {
  return check(Number(rawProcessVmReadv(pid, local, localCount, remote, remoteCount, 0)), () => `process_vm_readv(${pid})`);
}

/** readv with an iovec array as processVmReadv takes it; returns the bytes read (0 at the end). */
export function readv(fd: number, iov: Uint32Array, count: number): number {
  return check(Number(rawReadv(fd, iov, count)), () => `readv(${fd})`);
}

/** preadv with an iovec array as processVmReadv takes it; returns the bytes read. */
export function preadv(fd: number, iov: Uint32Array, count: number, offset: number): number {
  return check(Number(rawPreadv(fd, iov, count, offset)), () => `preadv(${fd})`);
}

/** struct pollfd for fd, asking for POLLIN. */
function pollFd(fd: number): Buffer {
  const entry = Buffer.alloc(8);
  entry.writeInt32LE(fd, 0);
  entry.writeInt16LE(1, 4);
  return entry;
}

/**
 * Whether fd has bytes to read or has reached its end (poll(2) for POLLIN), waiting up to
 * timeoutMs. An interrupted wait counts as not ready.
 */
export function pollIn(fd: number, timeoutMs: number): boolean {
  const got = rawPoll(pollFd(fd), 1, timeoutMs) as number;
  if (got < 0 && koffi.errno() !== constants.errno.EINTR) throw nativeError(koffi.errno(), `poll(${fd})`);
  return got > 0;
}

function tgkill(tgid: number, tid: number, signal: number): void {
  check(rawTgkill(tgid, tid, signal) as number, () => `tgkill(${tgid}, ${tid}, ${signal})`);
}

/** si_code of a signal sent with tgkill. */
export const SI_TKILL = -6;

/**
 * Queues a signal taken from thread tid (held while we held the thread) again, as it came: with
 * its siginfo (rt_tgsigqueueinfo) where the kernel lets another process send one so (sigqueue's,
 * a POSIX timer's, a message queue's, AIO's, SIGIO's: si_code below 0 but tgkill's); else with
 * tgkill from us, which keeps the signal and its thread, not the sender (kill's, the kernel's own
 * such as a child's SIGCHLD or an interval timer's SIGALRM, tgkill's).
 */
export function queueSignalAgain(tgid: number, tid: number, info: Buffer): void {
  const signal = info.readInt32LE(0);
  const code = info.readInt32LE(8);
  if (code >= 0 || code === SI_TKILL) return tgkill(tgid, tid, signal);
  check(Number(rawSyscall(SYS.rt_tgsigqueueinfo, 'int', tgid, 'int', tid, 'int', signal, 'void *', info)), () => `rt_tgsigqueueinfo(${tgid}, ${tid}, ${signal})`);
}

/** prlimit(2): pid's limit of `resource` before the call, which sets it to `limit` when one is given. */
export function prlimit(pid: number, resource: number, limit?: ResourceLimit): ResourceLimit {
  const wanted = limit ? new BigUint64Array([limit.soft, limit.hard]) : null;
  const old = new BigUint64Array(2);
  check(rawPrlimit(pid, resource, wanted, old) as number, () => `prlimit(${pid}, ${resource})`);
  return { soft: old[0], hard: old[1] };
}

/** Blocks the calling thread: only for the short waits of a freeze or an injection. */
export function usleep(microseconds: number): void {
  rawUsleep(microseconds);
}
