// A thread we hold in a ptrace stop and make run system calls of our choosing, one at a time:
// the restore's hands inside the stub. Each call points the thread at a `syscall` instruction we
// placed in its memory, lets it run to the end of that one call (PTRACE_SYSCALL: the entry stop,
// then the exit stop), and reads rax. Arguments that live in memory (paths, structs) are written
// to a scratch area next to the instruction. The thread's own registers are not kept: a stub has
// nothing worth keeping.

import { closeSync, openSync } from 'node:fs';
import { constants } from 'node:os';
import type { TimeSpec, TimeValue } from '../extension-model.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../format.js';
import { PAGE_SIZE, type UserRegs } from '../model.js';
import { ownId } from '../proc/status.js';
import { NativeError } from './errors.js';
import {
  __WALL, nativeError, ptrace, ptraceEventMessage, PTRACE_EVENT_CLONE, PTRACE_EVENT_FORK, PTRACE_O_SUSPEND_SECCOMP,
  PTRACE_O_TRACECLONE, PTRACE_O_TRACEFORK, PTRACE_O_TRACESYSGOOD, PTRACE_SETOPTIONS, PTRACE_SYSCALL, SYSCALL_STOP_SIGNAL, strerror, waitpid,
} from './libc.js';
import { readMemory, writeMemoryAt } from './memory.js';
import { getRegs, setRegs } from './regs.js';
import { getRseqConfiguration } from './threadstate.js';
import { AT_FDCWD, BPF_INSTRUCTION_SIZE, PR_SET_NAME, SYS } from './syscalls.js';

/** open(2)'s O_CLOEXEC, which Node's fs.constants does not carry. */
export const O_CLOEXEC = 0o2000000;
const LINUX_CAPABILITY_VERSION_3 = 0x20080522;

/** Options every remote thread is traced with: syscall stops tell themselves apart, children are ours. */
export const REMOTE_TRACE_OPTIONS = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACECLONE;

const SECCOMP_SET_MODE_FILTER = 1;
/** struct sock_fprog: u16 len, 6 bytes of padding, u64 filter. */
const SOCK_FPROG_SIZE = 16;
const RSEQ_FLAG_UNREGISTER = 1;
/** struct robust_list_head: what set_robust_list insists its length be. */
const ROBUST_LIST_HEAD_SIZE = 24;
/** struct clone_args up to and including set_tid_size (CLONE_ARGS_SIZE_VER1). */
const CLONE_ARGS_SIZE = 80;
/** The instruction the calls run: syscall; int3 (a stray return lands on a trap, not on garbage). */
export const SYSCALL_CODE = Buffer.from([0x0f, 0x05, 0xcc]);

/** A child a remote call created: a thread (clone) or a process (fork). Already in a ptrace stop. */
export interface RemoteChild {
  tid: number;
}

export class RemoteTask {
  private readonly base: UserRegs;
  private memFd = -1;

  /**
   * tid: a thread we trace, in a ptrace stop, with REMOTE_TRACE_OPTIONS. site: the address of
   * SYSCALL_CODE in its memory. scratch: where arguments may be written, scratchSize bytes.
   */
  constructor(
    readonly tid: number,
    private readonly site: number,
    private readonly scratch: number,
    private readonly scratchSize: number,
  ) {
    this.base = getRegs(tid);
  }

  /**
   * The same hands in another thread of this task, one we trace and hold in a ptrace stop (a
   * clone3 child): for the calls that act on the calling thread only.
   */
  inThread(tid: number): RemoteTask {
    return new RemoteTask(tid, this.site, this.scratch, this.scratchSize);
  }

  /** Sets the trace options a RemoteTask needs on a thread just seized or just created. */
  static traceOptions(tid: number): void {
    ptrace(PTRACE_SETOPTIONS, tid, 0, REMOTE_TRACE_OPTIONS);
  }

  /**
   * From now on seccomp filters do not judge the calls injected into this thread, nor into the
   * threads it creates (they inherit our options), while we trace them: needs CAP_SYS_ADMIN.
   */
  suspendSeccomp(): void {
    ptrace(PTRACE_SETOPTIONS, this.tid, 0, REMOTE_TRACE_OPTIONS | PTRACE_O_SUSPEND_SECCOMP);
  }

  /** Runs syscall nr; returns rax as the kernel left it (a negative errno on failure). */
  private syscall(nr: number, args: readonly (number | bigint)[]): { result: bigint; child?: RemoteChild } {
    const [rdi = 0n, rsi = 0n, rdx = 0n, r10 = 0n, r8 = 0n, r9 = 0n] = args.map(BigInt);
    // orig_rax -1: no syscall-restart logic may act on these registers when the thread resumes.
    setRegs(this.tid, { ...this.base, rip: BigInt(this.site), rax: BigInt(nr), orig_rax: -1n, rdi, rsi, rdx, r10, r8, r9 });
    this.resumeToSyscallStop(); // entering
    const child = this.resumeToSyscallStop(); // leaving
    return { result: BigInt.asIntN(64, getRegs(this.tid).rax), child };
  }

  /** Runs syscall nr; throws a NativeError naming `what` when it fails. */
  private call(what: string, nr: number, args: readonly (number | bigint)[]): bigint {
    const { result } = this.syscall(nr, args);
    if (result < 0n && result > -4096n) throw this.failure(Number(-result), what);
    return result;
  }

  private failure(errno: number, what: string): NativeError {
    return new NativeError(errno, `${what} in pid ${this.tid}`, strerror(errno));
  }

  /**
   * Resumes until the next syscall stop. Signals that arrive meanwhile are suppressed: nothing
   * of the stub may handle them, and the stub is about to become another program. A fork or
   * clone event hands back the new child, once it too has stopped.
   */
  private resumeToSyscallStop(): RemoteChild | undefined {
    let child: RemoteChild | undefined;
    for (;;) {
      ptrace(PTRACE_SYSCALL, this.tid, 0, 0);
      const stop = waitpid(this.tid, __WALL);
      if (stop.kind === 'exited' || stop.kind === 'killed') {
        throw nativeError(constants.errno.ESRCH, `remote(${this.tid})`,
          `the stub ${stop.kind === 'exited' ? `exited with status ${stop.code}` : `was killed by signal ${stop.signal}`}`);
      }
      if (stop.kind !== 'stopped') continue;
      if (stop.event === PTRACE_EVENT_CLONE || stop.event === PTRACE_EVENT_FORK) {
        child = { tid: ptraceEventMessage(this.tid) };
        awaitFirstStop(child.tid);
        continue;
      }
      if (stop.event === 0 && stop.signal === SYSCALL_STOP_SIGNAL) return child;
    }
  }

  /** Where staged arguments go: a struct that points into itself must know it. */
  get scratchAddress(): number {
    return this.scratch;
  }

  /** Writes bytes into the task's memory, whatever the protection (/proc/<pid>/mem forces it). */
  writeMemory(address: number, data: Buffer): void {
    if (this.memFd < 0) this.memFd = openSync(`/proc/${this.tid}/mem`, 'r+');
    writeMemoryAt(this.memFd, this.tid, address, data);
  }

  /** Releases the /proc/<pid>/mem handle; the object stays usable. */
  dispose(): void {
    if (this.memFd >= 0) closeSync(this.memFd);
    this.memFd = -1;
  }

  /** Puts data in the scratch area; returns its address there. */
  private stage(data: Buffer): number {
    if (data.length > this.scratchSize) {
      throw new RangeError(`remote(${this.tid}): ${data.length} bytes of arguments do not fit the ${this.scratchSize}-byte scratch area`);
    }
    this.writeMemory(this.scratch, data);
    return this.scratch;
  }

  /** The first length bytes of the scratch area, where a call left its answer. */
  private readScratch(length: number): Buffer {
    return readMemory(this.tid, this.scratch, length);
  }

  private stageString(text: string): number {
    return this.stage(Buffer.from(`${text}\0`, 'utf8'));
  }

  mmap(address: number, length: number, prot: number, flags: number, fd = -1, offset = 0): number {
    const what = `mmap(0x${address.toString(16)}, ${length}, prot ${prot}, flags 0x${flags.toString(16)}, fd ${fd})`;
    return Number(this.call(what, SYS.mmap, [address, length, prot, flags, fd, offset]));
  }

  munmap(address: number, length: number): void {
    this.call(`munmap(0x${address.toString(16)}, ${length})`, SYS.munmap, [address, length]);
  }

  mprotect(address: number, length: number, prot: number): void {
    this.call(`mprotect(0x${address.toString(16)}, ${length}, ${prot})`, SYS.mprotect, [address, length, prot]);
  }

  madvise(address: number, length: number, advice: number): void {
    this.call(`madvise(0x${address.toString(16)}, ${length}, ${advice})`, SYS.madvise, [address, length, advice]);
  }

  /** mseal(2): the mapping can no longer be unmapped, moved, made writable or given up. */
  mseal(address: number, length: number): void {
    this.call(`mseal(0x${address.toString(16)}, ${length})`, SYS.mseal, [address, length, 0]);
  }

  mlock2(address: number, length: number, flags: number): void {
    this.call(`mlock2(0x${address.toString(16)}, ${length}, ${flags})`, SYS.mlock2, [address, length, flags]);
  }

  mremap(address: number, oldLength: number, newLength: number, flags: number, newAddress: number): number {
    const what = `mremap(0x${address.toString(16)}, ${oldLength} -> 0x${newAddress.toString(16)})`;
    return Number(this.call(what, SYS.mremap, [address, oldLength, newLength, flags, newAddress]));
  }

  prctl(option: number, ...args: (number | bigint)[]): number {
    return Number(this.call(`prctl(${option})`, SYS.prctl, [option, ...args]));
  }

  /** prctl with a struct argument: data goes to the scratch area, its address is arg2. */
  prctlWithData(option: number, arg: number, data: Buffer, ...more: (number | bigint)[]): number {
    const address = this.stage(data);
    return Number(this.call(`prctl(${option}, ${arg})`, SYS.prctl, [option, arg, address, ...more]));
  }

  /** prctl whose arg2 is a string (PR_SET_NAME). */
  prctlString(option: number, text: string): void {
    this.call(`prctl(${option}, "${text}")`, SYS.prctl, [option, this.stageString(text)]);
  }

  /** PR_SET_NAME from the name's bytes (comm is not always UTF-8). */
  setName(name: Buffer): void {
    this.call(`prctl(PR_SET_NAME, ${JSON.stringify(name.toString('latin1'))})`, SYS.prctl, [PR_SET_NAME, this.stage(Buffer.concat([name, Buffer.alloc(1)]))]);
  }

  setgroups(groups: readonly number[]): void {
    this.call(`setgroups(${groups.length} groups)`, SYS.setgroups, [groups.length, this.stage(Buffer.from(new Uint32Array(groups).buffer))]);
  }

  setresuid(real: number, effective: number, saved: number): void {
    this.call(`setresuid(${real}, ${effective}, ${saved})`, SYS.setresuid, [real, effective, saved]);
  }

  setresgid(real: number, effective: number, saved: number): void {
    this.call(`setresgid(${real}, ${effective}, ${saved})`, SYS.setresgid, [real, effective, saved]);
  }

  /** setfsuid and setfsgid answer the previous id, never an error: the caller checks /proc. */
  setfsuid(uid: number): void {
    this.syscall(SYS.setfsuid, [uid]);
  }

  setfsgid(gid: number): void {
    this.syscall(SYS.setfsgid, [gid]);
  }

  /** capset(2) of the calling thread, with 64-bit sets (_LINUX_CAPABILITY_VERSION_3). */
  capset(effective: bigint, permitted: bigint, inheritable: bigint): void {
    const args = Buffer.alloc(8 + 2 * 12);
    args.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0);
    [effective, permitted, inheritable].forEach((set, i) => {
      args.writeUInt32LE(Number(set & 0xffff_ffffn), 8 + 4 * i);
      args.writeUInt32LE(Number(set >> 32n), 20 + 4 * i);
    });
    const at = this.stage(args);
    this.call(`capset(0x${effective.toString(16)}, 0x${permitted.toString(16)}, 0x${inheritable.toString(16)})`, SYS.capset, [at, at + 8]);
  }

  /**
   * seccomp(SECCOMP_SET_MODE_FILTER) of the calling thread with a classic BPF program (8 bytes an
   * instruction), staged in memory mapped for the call: a program may be larger than the scratch area.
   */
  addSeccompFilter(program: Buffer, flags: number): void {
    const size = Math.ceil((SOCK_FPROG_SIZE + program.length) / PAGE_SIZE) * PAGE_SIZE;
    const at = this.mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    try {
      const fprog = Buffer.alloc(SOCK_FPROG_SIZE);
      fprog.writeUInt16LE(program.length / BPF_INSTRUCTION_SIZE, 0);
      fprog.writeBigUInt64LE(BigInt(at + SOCK_FPROG_SIZE), 8);
      this.writeMemory(at, Buffer.concat([fprog, program]));
      this.call(`seccomp(SECCOMP_SET_MODE_FILTER, ${flags}, ${program.length / BPF_INSTRUCTION_SIZE} instructions)`, SYS.seccomp, [SECCOMP_SET_MODE_FILTER, flags, at]);
    } finally {
      this.munmap(at, size);
    }
  }

  memfdCreate(name: string, flags: number): number {
    return Number(this.call(`memfd_create(${JSON.stringify(name)}, ${flags})`, SYS.memfd_create, [this.stageString(name), flags]));
  }

  /** memfd_secret(2): a descriptor of new memory that no other process can read. */
  memfdSecret(flags: number): number {
    return Number(this.call(`memfd_secret(${flags})`, SYS.memfd_secret, [flags]));
  }

  ftruncate(fd: number, length: number): void {
    this.call(`ftruncate(${fd}, ${length})`, SYS.ftruncate, [fd, length]);
  }

  /** pidfd_open(2): a descriptor that polls readable once process pid (in its pid namespace) has exited. */
  pidfdOpen(pid: number): number {
    return Number(this.call(`pidfd_open(${pid})`, SYS.pidfd_open, [pid, 0]));
  }

  /** unshare(2): with CLONE_NEWTIME or CLONE_NEWPID, the namespace its children will be in. */
  unshare(flags: number): void {
    this.call(`unshare(0x${flags.toString(16)})`, SYS.unshare, [flags]);
  }

  /** personality(2) of the calling thread (threads it creates inherit it). */
  personality(persona: number): void {
    this.call(`personality(0x${persona.toString(16)})`, SYS.personality, [persona]);
  }

  /** arch_prctl; returns what the kernel returns (ARCH_MAP_VDSO_* answers the vDSO's size). */
  archPrctl(code: number, address: number): number {
    return Number(this.call(`arch_prctl(0x${code.toString(16)}, 0x${address.toString(16)})`, SYS.arch_prctl, [code, address]));
  }

  openat(path: string, flags: number, mode = 0): number {
    return Number(this.call(`open("${path}", 0${flags.toString(8)})`, SYS.openat, [AT_FDCWD, this.stageString(path), flags, mode]));
  }

  close(fd: number): void {
    this.call(`close(${fd})`, SYS.close, [fd]);
  }

  closeRange(first: number, last: number): void {
    this.call(`close_range(${first}, ${last})`, SYS.close_range, [first, last, 0]);
  }

  dup3(oldFd: number, newFd: number, flags: number): void {
    this.call(`dup3(${oldFd}, ${newFd})`, SYS.dup3, [oldFd, newFd, flags]);
  }

  fcntl(fd: number, command: number, arg: number): number {
    return Number(this.call(`fcntl(${fd}, ${command}, 0x${arg.toString(16)})`, SYS.fcntl, [fd, command, arg]));
  }

  /** write(2) of data (at most the scratch area); returns the bytes written. */
  write(fd: number, data: Buffer): number {
    return Number(this.call(`write(${fd}, ${data.length} bytes)`, SYS.write, [fd, this.stage(data), data.length]));
  }

  /** fcntl whose argument is a pointer to data (struct flock, for the lock commands). */
  fcntlWithData(fd: number, command: number, data: Buffer): void {
    this.call(`fcntl(${fd}, ${command}, ${data.length} bytes)`, SYS.fcntl, [fd, command, this.stage(data)]);
  }

  flock(fd: number, operation: number): void {
    this.call(`flock(${fd}, ${operation})`, SYS.flock, [fd, operation]);
  }

  /** ioctl whose argument is a pointer to data. */
  ioctlWithData(fd: number, request: number, data: Buffer): void {
    this.call(`ioctl(${fd}, 0x${request.toString(16)})`, SYS.ioctl, [fd, request, this.stage(data)]);
  }

  /** pipe2: returns [read end, write end]. */
  pipe2(flags: number): [number, number] {
    const at = this.stage(Buffer.alloc(8));
    this.call(`pipe2(0${flags.toString(8)})`, SYS.pipe2, [at, flags]);
    const ends = this.readScratch(8);
    return [ends.readInt32LE(0), ends.readInt32LE(4)];
  }

  /** socketpair(domain, type, 0): returns its two ends. */
  socketpair(domain: number, type: number): [number, number] {
    const at = this.stage(Buffer.alloc(8));
    this.call(`socketpair(${domain}, 0x${type.toString(16)})`, SYS.socketpair, [domain, type, 0, at]);
    const ends = this.readScratch(8);
    return [ends.readInt32LE(0), ends.readInt32LE(4)];
  }

  socket(domain: number, type: number, protocol: number): number {
    return Number(this.call(`socket(${domain}, 0x${type.toString(16)}, ${protocol})`, SYS.socket, [domain, type, protocol]));
  }

  /** setsockopt with an int value, or with the option's bytes. */
  setsockopt(fd: number, level: number, name: number, value: number | Buffer): void {
    let option = value;
    if (typeof option === 'number') {
      option = Buffer.alloc(4);
      option.writeInt32LE(value as number, 0);
    }
    const shown = typeof value === 'number' ? value : `${value.length} bytes`;
    this.call(`setsockopt(${fd}, ${level}, ${name}, ${shown})`, SYS.setsockopt, [fd, level, name, this.stage(option), option.length]);
  }

  /** bind(2) to address, a struct sockaddr. */
  bind(fd: number, address: Buffer): void {
    this.call(`bind(${fd}, ${address.length}-byte address)`, SYS.bind, [fd, this.stage(address), address.length]);
  }

  /** connect(2) to address, a struct sockaddr. */
  connect(fd: number, address: Buffer): void {
    this.call(`connect(${fd}, ${address.length}-byte address)`, SYS.connect, [fd, this.stage(address), address.length]);
  }

  shutdown(fd: number, how: number): void {
    this.call(`shutdown(${fd}, ${how})`, SYS.shutdown, [fd, how]);
  }

  listen(fd: number, backlog: number): void {
    this.call(`listen(${fd}, ${backlog})`, SYS.listen, [fd, backlog]);
  }

  /** A userfaultfd of this task's memory (see userfault.ts). */
  userfaultfd(flags: number): number {
    return Number(this.call(`userfaultfd(0${flags.toString(8)})`, SYS.userfaultfd, [flags]));
  }

  eventfd2(count: number, flags: number): number {
    return Number(this.call(`eventfd2(${count}, 0${flags.toString(8)})`, SYS.eventfd2, [count, flags]));
  }

  epollCreate1(flags: number): number {
    return Number(this.call(`epoll_create1(0${flags.toString(8)})`, SYS.epoll_create1, [flags]));
  }

  /** epoll_ctl(epfd, op, fd, &{events, data}). */
  epollCtl(epfd: number, op: number, fd: number, events: number, data: bigint): void {
    const event = Buffer.alloc(12); // struct epoll_event is packed on x86_64
    event.writeUInt32LE(events, 0);
    event.writeBigUInt64LE(data, 4);
    this.call(`epoll_ctl(${epfd}, ${op}, ${fd}, events 0x${events.toString(16)})`, SYS.epoll_ctl, [epfd, op, fd, this.stage(event)]);
  }

  timerfdCreate(clock: number, flags: number): number {
    return Number(this.call(`timerfd_create(${clock}, 0${flags.toString(8)})`, SYS.timerfd_create, [clock, flags]));
  }

  /** timerfd_settime(fd, 0, &{interval, value}, NULL): arms a timerfd with a relative value. */
  timerfdSettime(fd: number, interval: TimeSpec, value: TimeSpec): void {
    const [a, b] = [interval, value].map(({ sec, nsec }) => ({ sec, fraction: nsec, digits: 9 }));
    this.call(`timerfd_settime(${fd}, ${timePairText(a, b)})`, SYS.timerfd_settime, [fd, 0, this.stage(timePair(a, b)), 0]);
  }

  /** signalfd4(-1, &mask, 8, flags): a new signalfd. */
  inotifyInit1(flags: number): number {
    return Number(this.call(`inotify_init1(0${flags.toString(8)})`, SYS.inotify_init1, [flags]));
  }

  /** inotify_add_watch; returns the watch descriptor. */
  inotifyAddWatch(fd: number, path: string, mask: number): number {
    return Number(this.call(`inotify_add_watch(${fd}, ${JSON.stringify(path)}, 0x${mask.toString(16)})`, SYS.inotify_add_watch, [fd, this.stageString(path), mask]));
  }

  inotifyRmWatch(fd: number, wd: number): void {
    this.call(`inotify_rm_watch(${fd}, ${wd})`, SYS.inotify_rm_watch, [fd, wd]);
  }

  signalfd4(mask: bigint, flags: number): number {
    const set = Buffer.alloc(8);
    set.writeBigUInt64LE(mask);
    return Number(this.call(`signalfd4(mask 0x${mask.toString(16)}, 0${flags.toString(8)})`, SYS.signalfd4, [-1, this.stage(set), 8, flags]));
  }

  lseek(fd: number, offset: number, whence: number): void {
    this.call(`lseek(${fd}, ${offset})`, SYS.lseek, [fd, offset, whence]);
  }

  chdir(path: string): void {
    this.call(`chdir("${path}")`, SYS.chdir, [this.stageString(path)]);
  }

  /** rt_sigaction(signal, action, NULL, 8): action is the kernel's 32-byte struct sigaction. */
  sigaction(signal: number, action: Buffer): void {
    this.call(`rt_sigaction(${signal})`, SYS.rt_sigaction, [signal, this.stage(action), 0, 8]);
  }

  /** The calling thread's clear_child_tid: zeroed and futex-woken when it exits. */
  setTidAddress(address: number): void {
    this.call(`set_tid_address(0x${address.toString(16)})`, SYS.set_tid_address, [address]);
  }

  /** The calling thread's robust futex list, which the kernel walks when the thread exits. */
  setRobustList(head: number, length: number): void {
    this.call(`set_robust_list(0x${head.toString(16)}, ${length})`, SYS.set_robust_list, [head, length]);
  }

  /** Forgets the robust futex list. */
  clearRobustList(): void {
    this.setRobustList(0, ROBUST_LIST_HEAD_SIZE);
  }

  /**
   * Unregisters the thread's restartable-sequence area, if it has one: the kernel writes into
   * that area whenever the thread is scheduled, so it must not outlive the memory it lies in.
   */
  unregisterRseq(): void {
    const { address, length, signature } = getRseqConfiguration(this.tid);
    if (address === 0) return;
    this.call('rseq(unregister)', SYS.rseq, [address, length, RSEQ_FLAG_UNREGISTER, signature]);
  }

  /** Registers the calling thread's restartable-sequence area, as glibc does at thread start. */
  registerRseq(address: number, length: number, signature: number): void {
    this.call(`rseq(0x${address.toString(16)}, ${length}, 0, 0x${signature.toString(16)})`, SYS.rseq, [address, length, 0, signature]);
  }

  /** The calling thread's alternate signal stack: sigaltstack(&ss, NULL). */
  setSignalStack(sp: number, flags: number, size: number): void {
    const stack = Buffer.alloc(24); // stack_t: void *ss_sp, int ss_flags (padded to 8), size_t ss_size
    stack.writeBigUInt64LE(BigInt(sp), 0);
    stack.writeUInt32LE(flags, 8);
    stack.writeBigUInt64LE(BigInt(size), 16);
    this.call(`sigaltstack(0x${sp.toString(16)}, ${size}, flags 0x${flags.toString(16)})`, SYS.sigaltstack, [this.stage(stack), 0]);
  }

  /**
   * Queues a signal with the given 128-byte siginfo (its si_signo says which) to the whole
   * process tgid (thread tid omitted: rt_sigqueueinfo) or to thread tid of it
   * (rt_tgsigqueueinfo). The kernel lets a task send itself any si_code, as a queue restored
   * must: so tgid, or tid, must be this thread.
   */
  queueSignal(info: Buffer, tgid: number, tid?: number): void {
    const signal = info.readInt32LE(0);
    if (tid === undefined) this.call(`rt_sigqueueinfo(${tgid}, ${signal})`, SYS.rt_sigqueueinfo, [tgid, signal, this.stage(info)]);
    else this.call(`rt_tgsigqueueinfo(${tgid}, ${tid}, ${signal})`, SYS.rt_tgsigqueueinfo, [tgid, tid, signal, this.stage(info)]);
  }

  /** setpgid(0, 0): a process group of its own, as a shell gives each job. */
  ownProcessGroup(): void {
    this.call('setpgid(0, 0)', SYS.setpgid, [0, 0]);
  }

  /** setsid(): a session of its own, without a controlling terminal, as a daemon has. */
  ownSession(): void {
    this.call('setsid()', SYS.setsid, []);
  }

  /** The process's file mode creation mask. */
  umask(mask: number): void {
    this.call(`umask(0${mask.toString(8)})`, SYS.umask, [mask]);
  }

  /** setitimer(which, &{interval, value}, NULL): arms (or, with a zero value, disarms) an interval timer. */
  setitimer(which: number, interval: TimeValue, value: TimeValue): void {
    const [a, b] = [interval, value].map(({ sec, usec }) => ({ sec, fraction: usec, digits: 6 }));
    this.call(`setitimer(${which}, ${timePairText(a, b)})`, SYS.setitimer, [which, this.stage(timePair(a, b)), 0]);
  }

  /**
   * timer_create(clock, &event, &id) with the id given: the caller has turned
   * PR_TIMER_CREATE_RESTORE_IDS on, so the kernel takes the id to use from *id.
   */
  timerCreate(clock: number, id: number, event: { notify: number; signal: number; sigevValue: bigint; tid: number }): void {
    const args = Buffer.alloc(SIGEVENT_SIZE + 8);
    args.writeBigUInt64LE(event.sigevValue, 0); // struct sigevent: sigev_value, sigev_signo, sigev_notify, then the union
    args.writeInt32LE(event.signal, 8);
    args.writeInt32LE(event.notify, 12);
    args.writeInt32LE(event.tid, 16); // sigev_notify_thread_id
    args.writeInt32LE(id, SIGEVENT_SIZE);
    const at = this.stage(args);
    this.call(`timer_create(clock ${clock}, id ${id}, notify ${event.notify}, signal ${event.signal})`, SYS.timer_create, [clock, at, at + SIGEVENT_SIZE]);
  }

  /** timer_settime(id, 0, &{interval, value}, NULL): arms a POSIX timer with a relative value. */
  timerSettime(id: number, interval: TimeSpec, value: TimeSpec): void {
    const [a, b] = [interval, value].map(({ sec, nsec }) => ({ sec, fraction: nsec, digits: 9 }));
    this.call(`timer_settime(${id}, ${timePairText(a, b)})`, SYS.timer_settime, [id, 0, this.stage(timePair(a, b)), 0]);
  }

  /**
   * clone3: a new thread (CLONE_THREAD...) or process of this one, on no new stack (a stopped
   * child's registers are set before it runs), with the given tid when setTid is given. Returns
   * the child, stopped and traced by us.
   */
  clone3(options: { flags: number; exitSignal: number; setTid?: number }): RemoteChild {
    const args = Buffer.alloc(CLONE_ARGS_SIZE + 8);
    args.writeBigUInt64LE(BigInt(options.flags), 0);
    args.writeBigUInt64LE(BigInt(options.exitSignal), 32);
    if (options.setTid !== undefined) {
      args.writeBigUInt64LE(BigInt(this.scratch + CLONE_ARGS_SIZE), 64); // set_tid: the array after the struct
      args.writeBigUInt64LE(1n, 72); // set_tid_size
      args.writeInt32LE(options.setTid, CLONE_ARGS_SIZE);
    }
    const { result, child } = this.syscall(SYS.clone3, [this.stage(args), CLONE_ARGS_SIZE]);
    if (result < 0n) throw this.failure(Number(-result), 'clone3');
    // The result is the child's id in our pid namespace, or, for a thread of a process in a
    // namespace of its own, in that one.
    if (!child || (child.tid !== Number(result) && ownId(child.tid) !== Number(result))) {
      throw nativeError(constants.errno.ECHILD, `clone3 in pid ${this.tid}`, `child ${result} was not reported to its tracer`);
    }
    return child;
  }
}

/** struct sigevent. */
const SIGEVENT_SIZE = 64;

/** A time as seconds and a fraction of `digits` decimal digits (microseconds 6, nanoseconds 9). */
interface Time {
  sec: number;
  fraction: number;
  digits: number;
}

/** struct itimerval or itimerspec: interval, then value, each s64 seconds and s64 fraction. */
function timePair(interval: Time, value: Time): Buffer {
  const buf = Buffer.alloc(32);
  [interval, value].forEach(({ sec, fraction }, i) => {
    buf.writeBigInt64LE(BigInt(sec), i * 16);
    buf.writeBigInt64LE(BigInt(fraction), i * 16 + 8);
  });
  return buf;
}

function timePairText(interval: Time, value: Time): string {
  const text = ({ sec, fraction, digits }: Time) => `${sec}.${String(fraction).padStart(digits, '0')} s`;
  return `interval ${text(interval)}, value ${text(value)}`;
}

/** Waits for a freshly created child's first stop (auto-attached children start stopped). */
function awaitFirstStop(tid: number): void {
  const stop = waitpid(tid, __WALL);
  if (stop.kind !== 'stopped') throw nativeError(constants.errno.ESRCH, `remote(${tid})`, `new child ${tid} died before its first stop`);
}
