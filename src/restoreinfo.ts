// What the image extension records, read from a frozen process: exe, cwd, the exact brk, the
// signal dispositions, the interval and POSIX timers and each thread's exit futexes and alternate signal
// stack (which only the task itself can ask the kernel for), each thread's rseq area, the files
// behind its mappings, its open file descriptors, its umask, its resource limits, which pages of
// its shared memory without a file hold data and (only when that record is read) its VMAs'
// madvise flags. The rest (registers, FPU state, masks, auxv) the snapshot has already read.
// previewExtensionSize tells the extension's size without freezing.

import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, statSync } from 'node:fs';
import { Errno, ImgfsError } from './errors.js';
import type {
  BoundSocket, ConnectedSocket, ExtensionFd, NetlinkSocket, UnboundSocket, ExtensionMappedFile, ExtensionSigaction, FdKind, FileLock, FileLockKind, ImageExtension, IntervalTimer, PosixTimer, ResourceLimit, RobustList,
  MappedContent, ProcessSettings, RseqArea, SharedMemoryContents, SignalStack, SocketOption, TerminalState, ThreadIdentity, ThreadScheduling, TimeSpec, VmaFlags,
} from './extension-model.js';
import {
  AF_INET, AF_INET6, AF_NETLINK, AF_UNIX, IPPROTO_TCP, IPPROTO_UDP, pipesWithBothEnds, SO_REUSEADDR, SO_REUSEPORT, SOCK_DGRAM, SOCK_RAW, SOCK_STREAM, SOL_NETLINK, SOL_SOCKET, TCP_CLOSE, TCP_CLOSING, TCP_ESTABLISHED,
  TCP_LISTEN, unixSocketPath,
} from './extension-model.js';
import {
  extensionSize, FD_STATE_TARGETS, fdShape, ITIMER_COUNT, ITIMERVAL_SIZE, RLIM_INFINITY, RLIMIT_COUNT, RLIMIT_NAMES, SIGACTION_SIZE, SIGEV_NONE,
  SIGEV_SIGNAL, SIGEV_THREAD, SIGEV_THREAD_ID, SIGNAL_COUNT, VMA_FLAGS, FILE_CONTENT_MAX, MAPPED_CONTENT_MAX, SOCKET_DATA_MAX,
} from './extension.js';
import { xstateFormat, type StopState } from './coreinfo.js';
import { CKPT_TLS_ENTRIES, isAnonymous } from './format.js';
import { PAGE_SIZE, type Snapshot, type ThreadState, type Vma } from './model.js';
import { ANONYMOUS_HUGETLB_PATH, isDeleted, SECRET_MEMORY_PATH } from './proc/deleted.js';
import { gapsOf } from './pageindex.js';
import { DataExtents, guardPageRuns, scanPages } from './proc/pagemap.js';
import { parseCredentials, statusGroups } from './proc/credentials.js';
import { readSmaps } from './proc/smaps.js';
import { readStat, type ProcStat } from './proc/stat.js';
import { readTerminal } from './ptrace/terminal.js';
import { ownId, statusField, statusMask } from './proc/status.js';
import { NativeError } from './ptrace/errors.js';
import { injectSyscall, injectSyscalls, readBrk } from './ptrace/inject.js';
import { fcntlInt, F_GET_SEALS, getRobustList, getsockname, getsockoptBytes, hasPeer, getsockoptInt, openSocket, peekQueued, compareOpenFiles, takeDescriptor } from './ptrace/libc.js';
import { isServedFile } from './servedfiles.js';
import { SOCKET_OPTION_VALUE_MAX, SOCKET_OPTIONS } from './socketoptions.js';
import { affinityMaskBytes, getAffinity, getIoPriority, getSchedAttr, getTimerSlack } from './ptrace/scheduling.js';
import { pathOfHandle } from './ptrace/fhandle.js';
import { NSEC_PER_SEC, processClocks, type NamespaceClocks } from './proc/timens.js';
import { readMemory, writeMemoryForced } from './ptrace/memory.js';
import { peekPipe } from './ptrace/pipepeek.js';
import { statCached, type FileStat } from './ptrace/statx.js';
import { inetSockets, unixSockets, type InetSocket, type UnixSocket } from './ptrace/sockdiag.js';
import { getRseqConfiguration, peekPendingSignals } from './ptrace/threadstate.js';
import { previewChainLength, previewFilterLengths, readSeccomp } from './seccompstate.js';
import { constants as osConstants } from 'node:os';
import { IPPROTO_IPV6, IPV6_V6ONLY, PR_GET_DUMPABLE, PR_GET_SECUREBITS, SYS } from './ptrace/syscalls.js';

const PR_GET_TID_ADDRESS = 40;
const { EINVAL, EIO } = osConstants.errno;
const { SIGKILL, SIGSTOP, SIGCHLD } = osConstants.signals;
/** sizeof(sigset_t) as the kernel's rt_sigaction wants it. */
const KERNEL_SIGSET_SIZE = 8;
/** The x86_64 ABI lets a function use the 128 bytes below its stack pointer without moving it. */
const RED_ZONE = 128;
/** stack_t: void *ss_sp, int ss_flags (padded to 8), size_t ss_size. */
const STACK_T_SIZE = 24;
/** struct itimerspec: interval and value, each a timespec of s64 seconds and s64 nanoseconds. */
const ITIMERSPEC_SIZE = 32;
/** Room for the largest answer an injected call writes: a struct sigaction, itimerval or itimerspec. */
const SLOT_SIZE = Math.max(SIGACTION_SIZE, STACK_T_SIZE, ITIMERVAL_SIZE, ITIMERSPEC_SIZE);
/** Threads asked at once, each answering into its own slot of the scratch area. */
const THREAD_BATCH = 16;
const SCRATCH_SIZE = THREAD_BATCH * SLOT_SIZE;

/** What only the task itself can tell, asked with injected system calls; and its pending signals. */
export interface TaskAnswers {
  brk: number;
  /** prctl(PR_GET_DUMPABLE): 0, 1, or 2 (SUID_DUMP_ROOT). */
  dumpable: number;
  sigactions: ExtensionSigaction[];
  sharedPendingSignals: Buffer[];
  /** ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF. */
  itimers: IntervalTimer[];
  /** By ascending id; undefined where /proc/<pid>/timers is missing (no CONFIG_CHECKPOINT_RESTORE). */
  posixTimers: PosixTimer[] | undefined;
  /** One per thread, in the order askTask was given them. */
  threads: ThreadAnswers[];
}

/**
 * What a thread's own calls tell (what the kernel does with its memory when it exits, its
 * alternate signal stack), and its pending signals.
 */
export interface ThreadAnswers {
  clearChildTid: number;
  robustList: RobustList;
  sigaltstack: SignalStack;
  pendingSignals: Buffer[];
  securebits: number;
}

/**
 * Asks a frozen task for its exact brk, its signal dispositions, its interval timers, what is
 * left of each POSIX timer (one timer_gettime each: every open of a dump runs them) and each
 * thread's exit futexes and alternate signal stack. The pending signals are read first: a
 * thread that runs an injected call takes any signal it does not block off its queue on the way
 * back (a stopped task has those), and the injection queues it again without its siginfo.
 * Runs before the snapshot scans pages: an injected syscall may fault in the page of the
 * instruction it runs, and the scan must see the memory as the dump will read it. The answers
 * land in one thread's scratch area (found among vmas, the task's, which no injected call
 * changes), which every thread can write (they share the memory), and whose bytes are put back
 * at the end.
 */
export function askTask(pid: number, threads: readonly ThreadState[], vmas: readonly Vma[]): TaskAnswers {
  let injector: { tid: number; scratch: number } | undefined;
  for (const t of threads) {
    const scratch = scratchArea(pid, t.regs.rsp, vmas);
    if (scratch !== null) {
      injector = { tid: t.tid, scratch };
      break;
    }
  }
  if (injector === undefined) {
    throw new ImgfsError(Errno.EIO, `pid ${pid}: no thread has present, writable stack memory at its stack pointer to read the signal handlers into`);
  }
  const sharedPendingSignals = peekPendingSignals(pid, true);
  const pendingSignals = threads.map((t) => peekPendingSignals(t.tid, false));
  const scratch = injector.scratch;
  const saved = readMemory(pid, scratch, SCRATCH_SIZE);
  try {
    return {
      brk: readBrk(injector.tid),
      dumpable: checkInjected(pid, injector.tid, 'prctl(PR_GET_DUMPABLE)', injectSyscall(injector.tid, SYS.prctl, [PR_GET_DUMPABLE])),
      sigactions: readSigactions(pid, injector.tid, scratch),
      sharedPendingSignals,
      itimers: readItimers(pid, injector.tid, scratch),
      posixTimers: readTimerList(pid)?.map((timer) => ({ ...timer, ...readPosixTimerTimes(pid, injector.tid, scratch, timer.id) })),
      threads: askThreads(pid, threads, scratch).map((answers, i) => ({ ...answers, pendingSignals: pendingSignals[i] })),
    };
  } finally {
    writeMemoryForced(pid, scratch, saved);
  }
}

/**
 * Reads the extension of a process that takeSnapshot holds frozen; stopped: it was stopped
 * (SIGSTOP) before the freeze.
 */
export function readRestoreInfo(
  snapshot: Pick<Snapshot, 'pid' | 'threads' | 'vmas' | 'mm'>, stop: StopState, answers: TaskAnswers, stopped: boolean,
): ImageExtension {
  const { pid, threads, vmas } = snapshot;
  const umask = readUmask(readFileSync(`/proc/${pid}/status`, 'latin1'));
  // One walk of the page tables for them: GUARD_PAGES, and the pages SHARED_PAGES leaves out.
  const guards = guardPageRuns(pid, spansOf(vmas));
  const sharedMemory = sharedMemoryContents(pid, vmas, guards);
  // Read once: the credentials and the seccomp mode both come from it.
  const statuses = threads.map((t) => ({ tid: t.tid, status: readFileSync(`/proc/${pid}/task/${t.tid}/status`, 'latin1') }));
  const seccomp = readSeccomp(statuses);
  // The ids the process knows its threads by, in its own pid namespace: what a restore gives back.
  const ownIds = new Map(statuses.map(({ tid, status }) => [tid, ownId(tid, status)]));
  return {
    exe: programOf(pid, vmas, snapshot.mm.startCode),
    cwd: readlinkSync(`/proc/${pid}/cwd`),
    brk: answers.brk,
    auxv: stop.auxv,
    threads: threads.map((t, i) => ({
      tid: ownIds.get(t.tid)!,
      regs: t.regs,
      tls: t.tls,
      sigmask: stop.threads[i].signalMask,
      fpregs: stop.threads[i].fpregs,
      xstate: stop.threads[i].xstate,
      ...withoutSecurebits(answers.threads[i]),
      rseq: readRseq(t.tid),
      identity: readIdentity(pid, statuses[i], answers.threads[i].securebits),
      ...(seccomp.threads[i] ? { seccomp: seccomp.threads[i] } : {}),
      scheduling: readScheduling(t.tid),
    })),
    files: mappedFiles(pid, vmas),
    sigactions: answers.sigactions,
    fds: readFds(pid),
    sharedPendingSignals: answers.sharedPendingSignals,
    ...(umask === undefined ? {} : { umask }),
    rlimits: readRlimits(pid),
    itimers: answers.itimers,
    ...(answers.posixTimers === undefined ? {} : { posixTimers: answers.posixTimers.map((timer) => ({ ...timer, tid: ownIds.get(timer.tid) ?? timer.tid })) }),
    ...(sharedMemory.length > 0 ? { sharedMemory } : {}),
    vmaFlags: { count: vmas.length, read: () => readVmaFlags(pid, vmas) },
    ...(stopped ? { stopped } : {}),
    ...childrenOf(pid),
    ...(guards.length > 0 ? { guardPages: guards } : {}),
    ...withMappedContents(mappedContentsOf(pid, vmas)),
    ...(seccomp.filters.length > 0 ? { seccompFilters: seccomp.filters } : {}),
    settings: readProcessSettings(pid),
    clocks: clockTimes(processClocks(pid)),
  };
}

function clockTimes({ monotonic, boottime }: NamespaceClocks): { monotonic: TimeSpec; boottime: TimeSpec } {
  const time = (ns: bigint): TimeSpec => ({ sec: Number(ns / NSEC_PER_SEC), nsec: Number(ns % NSEC_PER_SEC) });
  return { monotonic: time(monotonic), boottime: time(boottime) };
}

function readScheduling(tid: number): ThreadScheduling {
  return { ...getSchedAttr(tid), cpus: getAffinity(tid), ioprio: getIoPriority(tid), timerSlackNs: getTimerSlack(tid) };
}

function readProcessSettings(pid: number): ProcessSettings {
  const read = (name: string) => readFileSync(`/proc/${pid}/${name}`, 'latin1').trim();
  return { oomScoreAdj: Number(read('oom_score_adj')), personality: Number.parseInt(read('personality'), 16) };
}

const spansOf = (vmas: readonly Vma[]): Array<[number, number]> => vmas.map((v) => [v.start, v.end]);

/**
 * The process's children, from every thread's /proc children list (a child belongs to the thread
 * that forked it; a kernel without CONFIG_PROC_CHILDREN has no such file: none known).
 */
function childrenOf(pid: number): { children?: number[] } {
  const children = eachThreadsFile(pid, 'children').flatMap((list) => list.trim().split(/\s+/).filter(Boolean).map(Number));
  return children.length > 0 ? { children: children.sort((a, b) => a - b) } : {};
}

/**
 * The madvise flags and mlock of each VMA, from smaps's VmFlags: asked for only when the dump's
 * VMA_FLAGS record is read (smaps walks every page table), while the task is still frozen.
 */
function readVmaFlags(pid: number, vmas: readonly Vma[]): VmaFlags[] {
  let smaps: Vma[];
  try {
    smaps = readSmaps(pid);
  } catch (err) {
    throw new ImgfsError(EIO, `pid ${pid}: cannot read its VMA flags (smaps): ${(err as Error).message}`);
  }
  return vmaFlagsOf(smaps, vmas);
}

/** The VMA_FLAGS entries of vmas, from smaps's VmFlags of the same VMAs. */
function vmaFlagsOf(smaps: readonly Vma[], vmas: readonly Vma[]): VmaFlags[] {
  const byStart = new Map(smaps.map((v) => [v.start, v.vmFlags] as const));
  return vmas.map(({ start }) => {
    const shown = byStart.get(start) ?? new Set<string>();
    return { start, flags: VMA_FLAGS.reduce((bits, f) => (shown.has(f.mnemonic) ? bits | f.bit : bits), 0) };
  });
}

/**
 * Reads now what the extension would read from the frozen task when its reader reaches it: the
 * VMA flags (from smaps, already read: the VMAs with their VmFlags) and the bytes of the deleted
 * files it carries. For a snapshot whose task runs on before it is read (--live).
 */
export function settleDeferred(info: ImageExtension, smaps: readonly Vma[], vmas: readonly Vma[]): void {
  info.vmaFlags = vmaFlagsOf(smaps, vmas);
  for (const fd of info.fds) {
    if (fd.content && !Buffer.isBuffer(fd.content.bytes)) fd.content.bytes = fd.content.bytes.read();
  }
}

/**
 * /proc/<pid>/task/<tid>/<name> of each thread of pid; a thread that ends while we look, or a file
 * the kernel lacks, is left out.
 */
function eachThreadsFile(pid: number, name: string): string[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    try {
      return [readFileSync(`/proc/${pid}/task/${tid}/${name}`, 'latin1')];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      return [];
    }
  });
}

/**
 * The program the process runs: /proc/<pid>/exe, unless the file mapped where its code starts
 * (stat's start_code) is another: a restore that could not name the program (that needs
 * CAP_CHECKPOINT_RESTORE) left the restorer's stub there, which the next image must not carry on.
 */
function programOf(pid: number, vmas: readonly Vma[], startCode: number): string {
  const exe = readlinkSync(`/proc/${pid}/exe`);
  const code = vmas.find((v) => v.start <= startCode && startCode < v.end);
  if (!code || isAnonymous(code) || !code.name.startsWith('/')) return exe;
  const [program, mapped] = [statSync(`/proc/${pid}/exe`), statSync(`/proc/${pid}/map_files/${code.start.toString(16)}-${code.end.toString(16)}`)];
  return program.dev === mapped.dev && program.ino === mapped.ino ? exe : code.name;
}

/** The size the extension of pid would have if it were frozen now, with these VMAs. */
export function previewExtensionSize(pid: number, vmas: readonly Vma[]): number {
  const xstateSize = xstateFormat().size;
  const pending = (status: string) => popcount(statusMask(status, 'SigPnd'));
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const cpuMaskBytes = affinityMaskBytes();
  const guards = guardPageRuns(pid, spansOf(vmas));
  // A pending bit is one queued signal, but for a real-time signal queued more than once. A thread
  // that has exited (a leader gone with pthread_exit) is not frozen, nor dumped.
  const threads = eachThreadsFile(pid, 'status').filter((threadStatus) => !/^State:\s+[ZX]/m.test(threadStatus)).map((threadStatus) => ({
    tlsCount: CKPT_TLS_ENTRIES, xstateSize, futexes: true, rseq: true, sigaltstack: true,
    pendingSignals: pending(threadStatus), groups: statusGroups(threadStatus).length,
    seccompFilters: previewChainLength(threadStatus), cpuMaskBytes,
  }));
  return extensionSize({
    exe: programOf(pid, vmas, readStat(pid).startCode),
    cwd: readlinkSync(`/proc/${pid}/cwd`),
    auxvLength: readFileSync(`/proc/${pid}/auxv`).length,
    threads,
    sharedPendingSignals: popcount(statusMask(status, 'ShdPnd')),
    umask: readUmask(status) !== undefined,
    rlimits: RLIMIT_COUNT,
    itimers: true,
    posixTimers: readTimerList(pid)?.length ?? null,
    filePaths: vmas.filter((v) => !isAnonymous(v)).map((v) => v.name),
    fds: readFds(pid).map(fdShape),
    sharedPages: sharedMemoryContents(pid, vmas, guards).map((m) => m.pages.totalPages),
    vmaFlags: vmas.length,
    stopped: /^State:\s+T/m.test(status),
    children: childrenOf(pid).children?.length ?? null,
    guardPages: guards.length > 0 ? guards.length : null,
    mappedContents: mappedContentsOf(pid, vmas).map((c) => c.bytes.length),
    // Only a thread with filters makes the filters' lengths worth asking for.
    seccompPrograms: threads.some((t) => (t.seccompFilters ?? 0) > 0) ? previewFilterLengths(pid) : [],
    settings: true,
    clocks: true,
  });
}

/**
 * Shared memory that no file a restore could open holds: shared anonymous memory
 * (`/dev/zero (deleted)`), SysV shm (`/SYSV%08x (deleted)`), memfd (`/memfd:name (deleted)`), a
 * deleted file mapped shared, named shared anonymous memory (`[anon_shmem:name]`). Not VM_IO or
 * VM_PFNMAP memory, which has no pages to read, nor memfd_secret memory, whose pages nobody else
 * may read.
 */
function isFilelessShared(vma: Vma): boolean {
  if (!vma.mayShare || isAnonymous(vma) || vma.vmFlags.has('io') || vma.vmFlags.has('pf') || vma.name === SECRET_MEMORY_PATH) return false;
  return isDeleted(vma.name) || !vma.name.startsWith('/');
}

/**
 * Each fileless shared VMA with the pages that hold data in its object (DataExtents), which the
 * image carries. Where map_files cannot be read, the pages present or swapped in this process's
 * page tables stand in: those another process or a descriptor wrote and this one never touched
 * are then missed.
 */
function sharedMemoryContents(pid: number, vmas: readonly Vma[], guards: ReadonlyArray<[number, number]>): SharedMemoryContents[] {
  const data = new DataExtents(pid);
  // A guard page (MADV_GUARD_INSTALL) cannot be read through the process: what its object holds
  // there stays behind, as the page is out of the process's reach anyway.
  return vmas.filter(isFilelessShared).map((vma) => {
    const pages = data.pagesOf(vma) ?? scanPages(pid, [[vma.start, vma.end]]);
    return { start: vma.start, end: vma.end, pages: guards.length === 0 ? pages : pages.restrict(gapsOf(vma.start, vma.end, guards)) };
  });
}

/**
 * Where an injected call can write its answer (SCRATCH_SIZE bytes): memory of the thread's stack whose
 * original bytes we save before and put back after, through /proc/<pid>/mem. The thread runs no
 * code of its own in between (it is frozen, and executes only our syscall), so any of its memory
 * would do; we prefer the bytes just below the 128-byte red zone, which are dead to it anyway, so
 * that not even an imgfs killed half-way leaves live data clobbered. Failing that (that page was
 * never touched), the bytes at the stack pointer. Either way the area must lie in present pages
 * of a private writable VMA: the kernel's copy_to_user must neither fault a new page in nor grow
 * the stack, which would change the memory the snapshot records.
 */
function scratchArea(pid: number, rsp: bigint, vmas: readonly Vma[]): number | null {
  const sp = Number(BigInt.asUintN(64, rsp));
  const belowRedZone = sp - RED_ZONE - SCRATCH_SIZE;
  const candidates = [belowRedZone - (belowRedZone % 16), sp];
  return candidates.find((address) => isUsableScratch(pid, address, vmas)) ?? null;
}

function isUsableScratch(pid: number, address: number, vmas: readonly Vma[]): boolean {
  const end = address + SCRATCH_SIZE;
  const vma = vmas.find((v) => v.start <= address && end <= v.end);
  if (vma === undefined || !vma.write || vma.mayShare) return false;
  const firstPage = address - (address % PAGE_SIZE);
  const pagesEnd = end + ((PAGE_SIZE - (end % PAGE_SIZE)) % PAGE_SIZE);
  return scanPages(pid, [[firstPage, pagesEnd]]).totalPages === (pagesEnd - firstPage) / PAGE_SIZE;
}

/**
 * The disposition of every signal. The kernel keeps handlers where no /proc file shows them:
 * status has only the masks of caught and ignored signals, so the task is asked, with an injected
 * rt_sigaction(sig, NULL, &old, 8), for those signals and for SIGCHLD (whose SA_NOCLDWAIT and
 * SA_NOCLDSTOP matter even at SIG_DFL). The others are SIG_DFL: flags and mask of a default
 * disposition change nothing, so they are recorded as zero.
 */
function readSigactions(pid: number, tid: number, scratch: number): ExtensionSigaction[] {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const asked = statusMask(status, 'SigCgt') | statusMask(status, 'SigIgn') | (1n << BigInt(SIGCHLD - 1));
  const actions: ExtensionSigaction[] = [];
  for (let signal = 1; signal <= SIGNAL_COUNT; signal++) {
    if (signal === SIGKILL || signal === SIGSTOP || !(asked & (1n << BigInt(signal - 1)))) {
      actions.push({ handler: 0n, flags: 0n, restorer: 0n, mask: 0n });
      continue;
    }
    injectChecked(pid, tid, `rt_sigaction(${signal})`, SYS.rt_sigaction, [signal, 0, scratch, KERNEL_SIGSET_SIZE]);
    const old = readMemory(pid, scratch, SIGACTION_SIZE);
    actions.push({
      handler: old.readBigUInt64LE(0),
      flags: old.readBigUInt64LE(8),
      restorer: old.readBigUInt64LE(16),
      mask: old.readBigUInt64LE(24),
    });
  }
  return actions;
}

/**
 * The interval timers, which only the process itself can ask for: getitimer(which, &value) for
 * ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF (all three are the process's, not a thread's). An
 * unarmed timer reads as zeros.
 */
function readItimers(pid: number, tid: number, scratch: number): IntervalTimer[] {
  return Array.from({ length: ITIMER_COUNT }, (_, which) => {
    injectChecked(pid, tid, `getitimer(${which})`, SYS.getitimer, [which, scratch]);
    const value = readMemory(pid, scratch, ITIMERVAL_SIZE);
    const time = (at: number) => ({ sec: Number(value.readBigInt64LE(at)), usec: Number(value.readBigInt64LE(at + 8)) });
    return { interval: time(0), value: time(16) };
  });
}

type TimerSetup = Omit<PosixTimer, 'interval' | 'value'>;

const NOTIFY_WORDS: Record<string, number> = { signal: SIGEV_SIGNAL, none: SIGEV_NONE, thread: SIGEV_THREAD };

/**
 * How each POSIX timer was created, by ascending id, from /proc/<pid>/timers (CONFIG_CHECKPOINT_RESTORE;
 * undefined without it): per timer "ID: <id>", "signal: <signo>/<sigev_value as %px>",
 * "notify: <signal|none|thread>/<pid|tid>.<n>" (tid: SIGEV_THREAD_ID to thread n), "ClockID: <clock>".
 * A SIGEV_THREAD_ID timer whose thread has exited (n is 0 then) signals no one: it is recorded
 * as SIGEV_NONE, which a restore can create.
 */
function readTimerList(pid: number): TimerSetup[] | undefined {
  const file = `/proc/${pid}/timers`;
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'latin1');
  const threads = new Set(readdirSync(`/proc/${pid}/task`).map(Number));
  const entry = /^ID: (\d+)\nsignal: (-?\d+)\/([0-9a-f]+)\nnotify: (\w+)\/(pid|tid)\.(\d+)\nClockID: (-?\d+)$/gm;
  const timers = [...text.matchAll(entry)].map(([, id, signal, value, how, kind, target, clock]) => {
    let notify = (NOTIFY_WORDS[how] ?? NaN) | (kind === 'tid' ? SIGEV_THREAD_ID : 0);
    if (![SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID].includes(notify)) {
      throw new ImgfsError(Errno.EIO, `${file}: timer ${id} has an unknown notification ${how}/${kind}`);
    }
    if (notify === SIGEV_THREAD_ID && !threads.has(Number(target))) notify = SIGEV_NONE;
    return {
      id: Number(id), clock: Number(clock), notify, tid: notify === SIGEV_THREAD_ID ? Number(target) : 0,
      signal: Number(signal), sigevValue: BigInt(`0x${value}`),
    };
  });
  const listed = text.match(/^ID:/gm)?.length ?? 0;
  if (timers.length !== listed) throw new ImgfsError(Errno.EIO, `${file}: ${listed} timers listed, ${timers.length} readable`);
  return timers.sort((a, b) => a.id - b.id);
}

/** What is left of a POSIX timer and its interval: timer_gettime(id, &its), which only the process can ask. */
function readPosixTimerTimes(pid: number, tid: number, scratch: number, id: number): Pick<PosixTimer, 'interval' | 'value'> {
  injectChecked(pid, tid, `timer_gettime(${id})`, SYS.timer_gettime, [id, scratch]);
  const its = readMemory(pid, scratch, ITIMERSPEC_SIZE);
  const time = (at: number) => ({ sec: Number(its.readBigInt64LE(at)), nsec: Number(its.readBigInt64LE(at + 8)) });
  return { interval: time(0), value: time(16) };
}

/** The umask /proc/<pid>/status shows (Linux 4.7+); undefined when it does not. */
function readUmask(status: string): number | undefined {
  const octal = statusField(status, 'Umask');
  return octal === undefined ? undefined : parseInt(octal, 8);
}

/**
 * Every resource limit, RLIMIT_CPU to RLIMIT_RTTIME, from /proc/<pid>/limits (one line each, in
 * that order: name, soft, hard, units). Not prlimit(pid, resource, NULL, &old): it refuses the
 * process of another user to a caller without CAP_SYS_RESOURCE, even to read, and so to root here.
 */
function readRlimits(pid: number): ResourceLimit[] {
  const file = `/proc/${pid}/limits`;
  const rows = readFileSync(file, 'latin1').split('\n').slice(1, 1 + RLIMIT_COUNT);
  const limit = (text: string) => (text === 'unlimited' ? RLIM_INFINITY : BigInt(text));
  return Array.from({ length: RLIMIT_COUNT }, (_, resource) => {
    // "%-25s %-20s %-20s %-10s": the name has spaces, the values none.
    const values = /^.{25} +(unlimited|\d+) +(unlimited|\d+)/.exec(rows[resource] ?? '');
    if (!values) throw new ImgfsError(Errno.EIO, `${file}: no limits of ${RLIMIT_NAMES[resource]} on line ${resource + 2}`);
    return { soft: limit(values[1]), hard: limit(values[2]) };
  });
}

function withoutSecurebits({ securebits, ...rest }: ThreadAnswers): Omit<ThreadAnswers, 'securebits'> {
  return rest;
}

/** A thread's name and credentials, from its comm and status files, with the securebits it told. */
function readIdentity(pid: number, { tid, status }: { tid: number; status: string }, securebits: number): ThreadIdentity {
  const dir = `/proc/${pid}/task/${tid}`;
  const comm = readFileSync(`${dir}/comm`);
  return {
    name: Buffer.from(comm.subarray(0, comm.length - 1)), // without its newline
    ...parseCredentials(status, `${dir}/status`),
    securebits,
  };
}

function popcount(mask: bigint): number {
  let count = 0;
  for (let rest = mask; rest !== 0n; rest &= rest - 1n) count++;
  return count;
}

/**
 * What each thread can only tell of itself, asked of THREAD_BATCH threads at a time (each answers
 * into its own slot of the scratch area): its clear_child_tid (prctl(PR_GET_TID_ADDRESS)) and its
 * alternate signal stack (sigaltstack(NULL, &old), whose flags say SS_ONSTACK when the thread was
 * running on it); its robust list, which get_robust_list answers from here. A kernel without
 * CONFIG_CHECKPOINT_RESTORE refuses PR_GET_TID_ADDRESS (EINVAL): the address is then recorded as
 * 0, and the restored thread wakes no pthread_join, as before this was recorded.
 */
function askThreads(pid: number, threads: readonly ThreadState[], scratch: number): Omit<ThreadAnswers, 'pendingSignals'>[] {
  const answers: Omit<ThreadAnswers, 'pendingSignals'>[] = [];
  for (let first = 0; first < threads.length; first += THREAD_BATCH) {
    const batch = threads.slice(first, first + THREAD_BATCH);
    const slot = (i: number) => scratch + i * SLOT_SIZE;
    const asked = injectSyscalls(batch.map((t, i) => ({ tid: t.tid, nr: SYS.prctl, args: [PR_GET_TID_ADDRESS, slot(i)] })));
    const tidAddresses = readMemory(pid, scratch, batch.length * SLOT_SIZE);
    const clearChildTids = batch.map((t, i) => {
      const result = BigInt.asIntN(64, asked[i]);
      if (result === 0n) return Number(tidAddresses.readBigUInt64LE(i * SLOT_SIZE));
      if (result === BigInt(-EINVAL)) return 0;
      throw new ImgfsError(Number(-result), `pid ${pid}: prctl(PR_GET_TID_ADDRESS) injected into thread ${t.tid} failed with errno ${-result}`);
    });
    const stackResults = injectSyscalls(batch.map((t, i) => ({ tid: t.tid, nr: SYS.sigaltstack, args: [0, slot(i)] })));
    const stacks = readMemory(pid, scratch, batch.length * SLOT_SIZE);
    const securebits = injectSyscalls(batch.map((t) => ({ tid: t.tid, nr: SYS.prctl, args: [PR_GET_SECUREBITS] })));
    batch.forEach((t, i) => {
      checkInjected(pid, t.tid, 'sigaltstack', stackResults[i]);
      const at = i * SLOT_SIZE;
      answers.push({
        securebits: checkInjected(pid, t.tid, 'prctl(PR_GET_SECUREBITS)', securebits[i]),
        clearChildTid: clearChildTids[i],
        robustList: getRobustList(t.tid),
        sigaltstack: { sp: Number(stacks.readBigUInt64LE(at)), flags: stacks.readUInt32LE(at + 8), size: Number(stacks.readBigUInt64LE(at + 16)) },
      });
    });
  }
  return answers;
}

/**
 * The thread's rseq registration, which glibc makes for every thread and which the kernel keeps
 * updated (the CPU the thread runs on, read by sched_getcpu). A kernel that cannot tell (before
 * 5.13, or without CONFIG_RSEQ: EIO) gets address 0: nothing to register again.
 */
function readRseq(tid: number): RseqArea {
  try {
    return getRseqConfiguration(tid);
  } catch (err) {
    if (err instanceof NativeError && err.errno === EIO) return { address: 0, length: 0, signature: 0 };
    throw err;
  }
}

/** Injects a call that returns 0 on success; anything else is an error naming it. */
function injectChecked(pid: number, tid: number, what: string, nr: number, args: (number | bigint)[]): void {
  checkInjected(pid, tid, what, injectSyscall(tid, nr, args));
}

/** An injected call's result, which must not be an error (-4095..-1): its value otherwise. */
function checkInjected(pid: number, tid: number, what: string, rax: bigint): number {
  const result = BigInt.asIntN(64, rax);
  if (result < 0n && result >= -4095n) throw new ImgfsError(Number(-result), `pid ${pid}: ${what} injected into thread ${tid} failed with errno ${-result}`);
  return Number(result);
}

/**
 * The file of every VMA that has one, identified by stat through map_files: the mapped inode
 * itself, even when its path was deleted or now names another file.
 */
function mappedFiles(pid: number, vmas: readonly Vma[]): ExtensionMappedFile[] {
  return vmas.filter((v) => !isAnonymous(v)).map((vma) => {
    const st = statMappedFile(pid, vma);
    return { start: vma.start, end: vma.end, path: vma.name, dev: st.dev, inode: st.ino, size: Number(st.size), mtimeNs: st.mtimeNs };
  });
}

const withMappedContents = (contents: MappedContent[]): { mappedContents?: MappedContent[] } => (contents.length > 0 ? { mappedContents: contents } : {});

/** All the deleted files a dump carries for mappings, at most (the reader holds one at a time). */
const MAPPED_CONTENTS_MAX = 128 << 20;

/**
 * The bytes of each file the process maps privately that no path leads to any more (its program
 * or a library deleted or replaced since it started: an upgrade), for a restore to map it from
 * again: up to MAPPED_CONTENT_MAX each and MAPPED_CONTENTS_MAX in all (larger ones are left out: a
 * restore then says the file was deleted). Read through /proc/<pid>/map_files when the image's
 * reader reaches them. Shared mappings carry their contents as SHARED_PAGES; a file of this mount
 * is never read (a read would ask ourselves).
 */
function mappedContentsOf(pid: number, vmas: readonly Vma[]): MappedContent[] {
  const budget = new CarryBudget(MAPPED_CONTENT_MAX, MAPPED_CONTENTS_MAX);
  const carried: MappedContent[] = [];
  for (const vma of vmas) {
    if (isAnonymous(vma) || vma.mayShare || !isDeleted(vma.name) || vma.name === ANONYMOUS_HUGETLB_PATH) continue;
    const path = `/proc/${pid}/map_files/${vma.start.toString(16)}-${vma.end.toString(16)}`;
    let st: FileStat;
    try {
      st = statCached(path);
    } catch {
      continue; // map_files needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE
    }
    if (!budget.take(st)) continue;
    const size = Number(st.size);
    carried.push({ dev: st.dev, inode: st.ino, mode: st.mode & 0o7777, bytes: { length: size, read: () => readExactly(path, size) } });
  }
  return carried;
}

function statMappedFile(pid: number, vma: Vma): FileStat {
  const range = `${vma.start.toString(16)}-${vma.end.toString(16)}`;
  try {
    return statCached(`/proc/${pid}/map_files/${range}`);
  } catch (mapFilesError) {
    // map_files needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE: the path is the next best thing.
    try {
      return statCached(vma.name);
    } catch {
      throw new ImgfsError(Errno.EIO, `pid ${pid}: cannot stat the file mapped at ${range} (${vma.name}): ${(mapFilesError as Error).message}`);
    }
  }
}

/**
 * Every open descriptor, ascending; one closed while we look (a shared table) is left out. A pipe
 * with both ends in the process gets its capacity and bytes on its first read end; a Unix socket
 * whose peer is open in the process too, the pair's type and that peer.
 */
function readFds(pid: number): ExtensionFd[] {
  const numbers = readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b);
  const fds: ExtensionFd[] = [];
  let stat: ProcStat | undefined;
  for (const fd of numbers) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1');
      // Without asking the file's file system: an fd on this mount would be a request to ourselves.
      const st = statCached(`/proc/${pid}/fd/${fd}`);
      const kind = fdKind(st);
      fds.push({
        fd,
        kind,
        flags: parseInt(fdinfoField(info, 'flags', pid, fd), 8),
        offset: Number(fdinfoField(info, 'pos', pid, fd)),
        target,
        ...anonInodeState(target, info, `/proc/${pid}/fdinfo/${fd}`),
        ...fdinfoLocks(info),
        ...(kind === 'tty' ? terminalOf(pid, fd, st.rdev, stat ??= readStat(pid)) : {}),
        ...(kind === 'file' ? { fileState: { dev: st.dev, inode: st.ino, size: Number(st.size), mtimeNs: st.mtimeNs } } : {}),
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  for (const { read } of pipesWithBothEnds(fds).values()) {
    try {
      read[0].pipeData = peekPipe(`/proc/${pid}/fd/${read[0].fd}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  describeSockets(pid, fds.filter((fd) => fd.kind === 'socket' && fd.fd > 2));
  carryLostFiles(pid, fds);
  markSharedFiles(pid, fds);
  return fds;
}

/**
 * Gives each descriptor that is a dup of a lower one (`2>&1`, dup2) the lowest one's number, so a
 * restore dups it again: two descriptors of one open file share its offset, and written
 * separately at their own offsets they would overwrite each other's output. Only descriptors
 * with one target can be dups: those are sorted by open file with kcmp (n log n calls, for the
 * process with a thousand descriptors of /dev/null), and equal neighbours are one. Pipes and
 * sockets are left out: their ends are told apart by inode, and a restore makes each one once
 * for all its numbers.
 */
function markSharedFiles(pid: number, fds: ExtensionFd[]): void {
  const byTarget = new Map<string, ExtensionFd[]>();
  for (const fd of fds) {
    if (fd.kind === 'pipe' || fd.kind === 'socket') continue;
    const same = byTarget.get(fd.target);
    if (same) same.push(fd);
    else byTarget.set(fd.target, [fd]);
  }
  for (const same of byTarget.values()) {
    if (same.length < 2) continue;
    // Ascending by number within one open file: the first of each run is its lowest descriptor.
    const sorted = [...same].sort((a, b) => compareOpenFiles(pid, a.fd, b.fd) || a.fd - b.fd);
    let original = sorted[0];
    for (const fd of sorted.slice(1)) {
      if (compareOpenFiles(pid, original.fd, fd.fd) === 0) fd.sharesWith = original.fd;
      else original = fd;
    }
  }
}

/** All the deleted files and memfds a dump carries, at most: the extension holds them in memory. */
const CARRIED_FILES_MAX = 64 << 20;

/**
 * Gives the first descriptor of each file no path leads to any more (deleted, or a memfd) the
 * file's bytes, up to FILE_CONTENT_MAX each and CARRIED_FILES_MAX in all (larger ones are left
 * out: a restore puts /dev/null there, with a warning). Its bytes are read through
 * /proc/<pid>/fd when the image's reader reaches them, never from a file of this mount (a read
 * would ask ourselves).
 */
function carryLostFiles(pid: number, fds: ExtensionFd[]): void {
  const budget = new CarryBudget(FILE_CONTENT_MAX, CARRIED_FILES_MAX);
  for (const fd of fds) {
    if (fd.kind !== 'file' || !isDeleted(fd.target) || fd.target === SECRET_MEMORY_PATH) continue;
    const path = `/proc/${pid}/fd/${fd.fd}`;
    const st = statCached(path);
    if (!budget.take(st)) continue;
    const size = Number(st.size);
    const memfd = fd.target.startsWith('/memfd:');
    fd.content = { memfd, seals: memfd ? fileSeals(path) : 0, mode: st.mode & 0o7777, bytes: { length: size, read: () => readExactly(path, size) } };
  }
}

/**
 * Which files no path leads to any more a dump carries the bytes of: each file once (by device and
 * inode: two memfds may have one name), up to perFile bytes each and total in all, never a file of
 * this mount (a read of it would ask ourselves).
 */
class CarryBudget {
  private left: number;
  private readonly carried = new Set<string>();

  constructor(private readonly perFile: number, total: number) {
    this.left = total;
  }

  /** Whether the file of st is carried; it counts against the budget if so. */
  take(st: FileStat): boolean {
    const file = `${st.dev}:${st.ino}`;
    const size = Number(st.size);
    if (this.carried.has(file) || size > this.perFile || size > this.left || isServedFile(st.dev)) return false;
    this.left -= size;
    this.carried.add(file);
    return true;
  }
}

/** A memfd's seals (F_GET_SEALS), asked of a descriptor of our own. */
function fileSeals(path: string): number {
  const fd = openSync(path, 'r');
  try {
    return fcntlInt(fd, F_GET_SEALS, 0);
  } finally {
    closeSync(fd);
  }
}

/** length bytes of the file: what it has, zeros past its end if it shrank since. */
function readExactly(path: string, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  const fd = openSync(path, 'r');
  try {
    for (let done = 0; done < length;) {
      const got = readSync(fd, bytes, done, length - done, done);
      if (got === 0) break;
      done += got;
    }
  } finally {
    closeSync(fd);
  }
  return bytes;
}

/**
 * Gives each socket whose peer is among these sockets that peer, each listening or bound
 * datagram socket what binds it again, and each socket connected elsewhere what it is connected
 * to (sock_diag, asked only if there are sockets).
 */
function describeSockets(pid: number, sockets: readonly ExtensionFd[]): void {
  if (sockets.length === 0) return;
  const inodeOf = (fd: ExtensionFd) => Number(/^socket:\[(\d+)\]$/.exec(fd.target)?.[1]);
  const unix = askSockDiag(unixSockets);
  const inet = new Map<number, InetSocket>();
  const askInet = (states: readonly number[]) => {
    for (const [inode, socket] of askSockDiag(() => inetSockets(states))) inet.set(inode, socket);
  };
  const unknown = () => sockets.filter((fd) => !unix.has(inodeOf(fd)) && !inet.has(inodeOf(fd)));
  if (unknown().length > 0) askInet([TCP_LISTEN, TCP_CLOSE]);
  // The rest are connections, or sockets sock_diag does not list (netlink): each one's own
  // descriptor tells which. Connections are asked for only when some are inet sockets: a busy
  // machine has many, which every stat of a dump would otherwise list.
  const others = new Map(unknown().map((fd) => [fd, askOwnDescriptor(pid, fd.fd, ownSocket)] as const));
  // (A socket the kernel gives no descriptor of may be one too.)
  if ([...others.values()].some((own) => own === undefined || ((own.domain === AF_INET || own.domain === AF_INET6) && !own.unbound))) askInet(CONNECTION_STATES);
  const targets = new Set(sockets.map((fd) => fd.target));
  const peeked = new Set<string>();
  for (const fd of sockets) {
    const inode = inodeOf(fd);
    const unixSocket = unix.get(inode);
    if (unixSocket && unixSocket.peer !== 0 && targets.has(`socket:[${unixSocket.peer}]`)) {
      fd.unixPeer = { type: unixSocket.type, peer: unixSocket.peer };
      if (!peeked.has(fd.target)) {
        peeked.add(fd.target);
        const queued = queuedMessages(pid, fd.fd, unixSocket.type === SOCK_STREAM);
        if (queued && queued.length > 0 && queued.reduce((sum, m) => sum + m.length, 0) <= SOCKET_DATA_MAX) fd.queued = queued;
      }
    }
    const bound = unixSocket ? boundUnixSocket(pid, unixSocket) : boundInetSocket(inet.get(inode));
    if (!bound) {
      if (fd.unixPeer) continue;
      fd.connectedSocket = unixSocket ? connectedUnixSocket(unixSocket, unix) : connectedInetSocket(inet.get(inode));
      if (!fd.connectedSocket) describeOwnSocket(fd, others.has(fd) ? others.get(fd) : askOwnDescriptor(pid, fd.fd, ownSocket));
      // A datagram socket is connected again, and goes on with its options (a stream one comes back closed).
      else if (fd.connectedSocket.type === SOCK_DGRAM) withOptions(fd, askOwnDescriptor(pid, fd.fd, (ours) => changedOptions(ours, fd.connectedSocket!)) ?? []);
      continue;
    }
    const { reuseport, options } = socketSettings(pid, fd.fd, bound);
    fd.boundSocket = { ...bound, reuseport };
    withOptions(fd, options);
  }
}

/** A Unix socket connected to a socket of another process (or one that closed), with both names as far as they have them. */
function connectedUnixSocket(socket: UnixSocket, unix: ReadonlyMap<number, UnixSocket>): ConnectedSocket | undefined {
  if (socket.state === TCP_LISTEN || (socket.peer === 0 && socket.state !== TCP_ESTABLISHED)) return undefined;
  const sockaddr = (name: Buffer | null | undefined) => (name ? unixSockaddr(name) : Buffer.alloc(0));
  return { family: AF_UNIX, type: socket.type, protocol: 0, state: socket.state, local: sockaddr(socket.name), peer: sockaddr(unix.get(socket.peer)?.name) };
}

/** The struct sockaddr_un of a name as sock_diag gives it (a path with its NUL, or an abstract name). */
function unixSockaddr(name: Buffer): Buffer {
  const address = Buffer.alloc(2 + name.length);
  address.writeUInt16LE(AF_UNIX, 0);
  name.copy(address, 2);
  return address;
}

/**
 * The sk_states of a connection that a descriptor can hold: not TIME_WAIT (6) nor the SYN_RECV
 * (3, 12) of a connection not yet accepted, which the kernel keeps without a socket.
 */
const CONNECTION_STATES = [TCP_ESTABLISHED, 2, 4, 5, 8, 9, TCP_CLOSING];

/** A TCP connection (in any of its states) or a connected UDP socket. */
function connectedInetSocket(socket: InetSocket | undefined): ConnectedSocket | undefined {
  if (!socket || socket.state === TCP_LISTEN || socket.state === TCP_CLOSE) return undefined;
  const type = socket.protocol === IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
  return { family: socket.family, type, protocol: socket.protocol, state: socket.state, local: socket.address, peer: socket.peer };
}

/**
 * ask(our own descriptor of the process's fd, from pidfd_getfd); undefined where the kernel gives
 * no descriptor.
 */
function askOwnDescriptor<T>(pid: number, fd: number, ask: (ours: number) => T): T | undefined {
  const ours = takeDescriptor(pid, fd);
  if (ours < 0) return undefined;
  try {
    return ask(ours);
  } finally {
    closeSync(ours);
  }
}

/** What a socket sock_diag does not describe tells of itself. */
interface OwnSocket {
  /** SO_DOMAIN. */
  domain: number;
  netlink?: NetlinkSocket;
  /** A Unix, IPv4 or IPv6 socket bound to no address, and its options that differ from a new one's. */
  unbound?: { socket: UnboundSocket; options: SocketOption[] };
}

/** A socket's family (SO_DOMAIN), and what makes it again if it is a netlink socket or one bound to nothing. */
function ownSocket(ours: number): OwnSocket {
  const domain = getsockoptInt(ours, SOL_SOCKET, SO_DOMAIN);
  if (domain === AF_NETLINK) return { domain, netlink: netlinkSocket(ours) };
  const unbound = unboundSocket(ours, domain);
  return unbound ? { domain, unbound } : { domain };
}

/** Gives a socket neither bound nor connected in sock_diag's eyes what its own descriptor said it is (nothing if none). */
function describeOwnSocket(fd: ExtensionFd, own: OwnSocket | undefined): void {
  if (own?.netlink) fd.netlink = own.netlink;
  if (!own?.unbound) return;
  fd.unboundSocket = own.unbound.socket;
  withOptions(fd, own.unbound.options);
}

function withOptions(fd: ExtensionFd, options: SocketOption[]): void {
  if (options.length > 0) fd.socketOptions = options;
}

/** A Unix, IPv4 or IPv6 socket that holds no address (getsockname) and has no peer: its kind, the flags its later bind depends on, its options. */
function unboundSocket(ours: number, family: number): OwnSocket['unbound'] {
  if (family !== AF_UNIX && family !== AF_INET && family !== AF_INET6) return undefined;
  const type = getsockoptInt(ours, SOL_SOCKET, SO_TYPE);
  if (!holdsNoAddress(getsockname(ours), type) || hasPeer(ours)) return undefined;
  const kind = { family, type, protocol: getsockoptInt(ours, SOL_SOCKET, SO_PROTOCOL) };
  const isSet = (level: number, name: number) => getsockoptInt(ours, level, name) !== 0;
  const socket: UnboundSocket = {
    ...kind, reuseaddr: isSet(SOL_SOCKET, SO_REUSEADDR), reuseport: family !== AF_UNIX && isSet(SOL_SOCKET, SO_REUSEPORT),
    v6only: family === AF_INET6 && isSet(IPPROTO_IPV6, IPV6_V6ONLY),
  };
  return { socket, options: changedOptions(ours, kind) };
}

/**
 * Whether a socket's own address is none: a Unix socket without a name, an IPv4 or IPv6 socket on
 * the wildcard address and port 0 (a raw socket's port is its protocol, whether bound or not).
 */
function holdsNoAddress(address: Buffer, type: number): boolean {
  const family = address.readUInt16LE(0);
  if (family === AF_UNIX) return address.length <= 2;
  const ip = family === AF_INET ? address.subarray(4, 8) : address.subarray(8, 24);
  return (address.readUInt16BE(2) === 0 || type === SOCK_RAW) && ip.every((byte) => byte === 0);
}

/** A netlink socket's type, protocol and multicast groups (SO_TYPE, SO_PROTOCOL, NETLINK_LIST_MEMBERSHIPS). */
function netlinkSocket(ours: number): NetlinkSocket {
  const bitmap = getsockoptBytes(ours, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, NETLINK_GROUP_BITMAP_BYTES) ?? Buffer.alloc(0);
  const groups: number[] = [];
  for (let word = 0; word + 4 <= bitmap.length; word += 4) {
    const bits = bitmap.readUInt32LE(word);
    for (let bit = 0; bit < 32; bit++) if ((bits >>> bit) & 1) groups.push(word * 8 + bit + 1);
  }
  return { type: getsockoptInt(ours, SOL_SOCKET, SO_TYPE), protocol: getsockoptInt(ours, SOL_SOCKET, SO_PROTOCOL), groups };
}

const SO_TYPE = 3;
const SO_PROTOCOL = 38;
const SO_DOMAIN = 39;
const NETLINK_LIST_MEMBERSHIPS = 9;
/** Room for 4096 groups, far more than any netlink family has. */
const NETLINK_GROUP_BITMAP_BYTES = 512;

/** What waits to be read from the process's Unix socket fd, peeked at through our own descriptor of it. */
function queuedMessages(pid: number, fd: number, stream: boolean): Buffer[] | null {
  return askOwnDescriptor(pid, fd, (ours) => peekQueued(ours, stream)?.map((m) => Buffer.from(m))) ?? null;
}

/** What sock_diag answers; nothing on a kernel without it (the sockets are then recorded as sockets only). */
function askSockDiag<T>(ask: () => Map<number, T>): Map<number, T> {
  try {
    return ask();
  } catch {
    return new Map();
  }
}

function boundUnixSocket(pid: number, socket: UnixSocket): Omit<BoundSocket, 'reuseport'> | undefined {
  if (socket.name === null) return undefined;
  const listening = socket.state === TCP_LISTEN;
  if (!listening && !(socket.type === SOCK_DGRAM && socket.peer === 0)) return undefined;
  const address = unixSockaddr(socket.name);
  const file = socketFile(pid, address, socket.fileInode);
  return { family: AF_UNIX, type: socket.type, protocol: 0, listening, backlog: socket.backlog, v6only: false, ...(file ? { file } : {}), address };
}

/**
 * The mode and owner of the file of a Unix socket bound to a path, as the process sees the path
 * (through its working directory and root). None when the path no longer leads to the socket's
 * own file (removed, or replaced by another).
 */
function socketFile(pid: number, address: Buffer, fileInode: number | null): BoundSocket['file'] {
  const path = unixSocketPath(address);
  if (path === null || fileInode === null) return undefined;
  try {
    const st = statCached(path.startsWith('/') ? `/proc/${pid}/root${path}` : `/proc/${pid}/cwd/${path}`);
    if (!st.isSocket() || Number(st.ino & 0xffff_ffffn) !== fileInode) return undefined;
    return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  } catch {
    return undefined;
  }
}

/**
 * What sock_diag does not tell of the process's socket fd, asked of our own descriptor of it
 * (pidfd_getfd): SO_REUSEPORT, and the options whose values differ from those of a new socket of
 * its kind. Neither where the kernel gives no descriptor.
 */
function socketSettings(pid: number, fd: number, socket: Omit<BoundSocket, 'reuseport'>): { reuseport: boolean; options: SocketOption[] } {
  return askOwnDescriptor(pid, fd, (ours) => ({
    reuseport: socket.family !== AF_UNIX && getsockoptInt(ours, SOL_SOCKET, SO_REUSEPORT) !== 0, options: changedOptions(ours, socket),
  })) ?? { reuseport: false, options: [] };
}

/**
 * The options of SOCKET_OPTIONS whose values differ from a new socket's of the kind; none when
 * imgfs may not make one (a raw socket without CAP_NET_RAW).
 */
function changedOptions(fd: number, { family, type, protocol }: Pick<BoundSocket, 'family' | 'type' | 'protocol'>): SocketOption[] {
  let fresh: number;
  try {
    fresh = openSocket(family, type, protocol);
  } catch (err) {
    if (err instanceof NativeError) return [];
    throw err;
  }
  try {
    return SOCKET_OPTIONS.flatMap(({ level, name }) => {
      const value = getsockoptBytes(fd, level, name, SOCKET_OPTION_VALUE_MAX);
      if (value === null || value.length === 0) return [];
      const usual = getsockoptBytes(fresh, level, name, SOCKET_OPTION_VALUE_MAX);
      return usual !== null && usual.equals(value) ? [] : [{ level, name, value: Buffer.from(value) }];
    });
  } finally {
    closeSync(fresh);
  }
}

function boundInetSocket(socket: InetSocket | undefined): Omit<BoundSocket, 'reuseport'> | undefined {
  if (!socket) return undefined;
  const listening = socket.protocol === IPPROTO_TCP && socket.state === TCP_LISTEN;
  // An unconnected UDP socket bound to a port (port 0: never bound).
  const boundDatagram = socket.protocol === IPPROTO_UDP && socket.state === TCP_CLOSE && socket.address.readUInt16BE(2) !== 0;
  if (!listening && !boundDatagram) return undefined;
  return {
    family: socket.family, type: listening ? SOCK_STREAM : SOCK_DGRAM, protocol: socket.protocol,
    listening, backlog: socket.backlog, v6only: socket.v6only, address: socket.address,
  };
}

const LOCK_KINDS: Record<string, FileLockKind> = { FLOCK: 'flock', POSIX: 'posix', OFDLCK: 'ofd' };

/**
 * The locks an fdinfo shows as held through its descriptor: `lock:` lines of flock, POSIX and OFD
 * locks (a line with `->` is a waiter, not a holder; leases and delegations are not locks).
 */
export function fdinfoLocks(info: string): { locks?: FileLock[] } {
  const locks = [...info.matchAll(/^lock:\s*\d+: (FLOCK|POSIX|OFDLCK)\s+\S+\s+(READ|WRITE)\s+\S+\s+\S+\s+(\d+)\s+(\d+|EOF)\s*$/gm)]
    .map(([, kind, type, start, end]): FileLock => ({
      kind: LOCK_KINDS[kind], write: type === 'WRITE', start: Number(start), end: end === 'EOF' ? null : Number(end),
    }));
  return locks.length > 0 ? { locks } : {};
}

function fdinfoField(info: string, name: string, pid: number, fd: number): string {
  const value = new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(info)?.[1];
  if (value === undefined) throw new ImgfsError(Errno.EIO, `/proc/${pid}/fdinfo/${fd} has no ${name} field`);
  return value;
}

/**
 * What fdinfo tells of an eventfd, epoll, timerfd, signalfd, inotify instance or userfaultfd
 * (their show_fdinfo): enough to make it again.
 */
export function anonInodeState(
  target: string, info: string, where: string, resolve: typeof pathOfHandle = pathOfHandle,
): Pick<ExtensionFd, 'eventfd' | 'epoll' | 'timerfd' | 'signalfd' | 'inotify' | 'userfaultfd'> {
  const field = (name: string, pattern: string): RegExpExecArray => {
    const match = new RegExp(`^${name}:\\s*${pattern}\\s*$`, 'm').exec(info);
    if (match === null) throw new ImgfsError(Errno.EIO, `${where} (${target}) has no ${name} field`);
    return match;
  };
  switch (target) {
    case FD_STATE_TARGETS.eventfd:
      return {
        eventfd: {
          count: BigInt(`0x${field('eventfd-count', '([0-9a-f]+)')[1]}`),
          // Kernels before 6.6 do not show the mode: a semaphore eventfd reads as a counting one.
          semaphore: /^eventfd-semaphore:\s*1\s*$/m.test(info),
        },
      };
    case FD_STATE_TARGETS.epoll:
      return {
        epoll: [...info.matchAll(/^tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)/gm)]
          .map(([, fd, events, data]) => ({ fd: Number(fd), events: parseInt(events, 16), data: BigInt(`0x${data}`) })),
      };
    case FD_STATE_TARGETS.timerfd: {
      const time = (name: string) => {
        const [, sec, nsec] = field(name, '\\((\\d+), (\\d+)\\)');
        return { sec: Number(sec), nsec: Number(nsec) };
      };
      return {
        timerfd: {
          clock: Number(field('clockid', '(-?\\d+)')[1]),
          ticks: BigInt(field('ticks', '(\\d+)')[1]),
          settimeFlags: parseInt(field('settime flags', '([0-7]+)')[1], 8),
          interval: time('it_interval'),
          value: time('it_value'),
        },
      };
    }
    case FD_STATE_TARGETS.signalfd:
      return { signalfd: { mask: BigInt(`0x${field('sigmask', '([0-9a-f]+)')[1]}`) } };
    case FD_STATE_TARGETS.userfaultfd: {
      // fs/userfaultfd.c: "API: <api>:<features>:<ioctls>"; the features word has
      // UFFD_FEATURE_INITIALIZED (bit 31) once UFFDIO_API is done, an internal bit no call takes.
      const features = BigInt(`0x${field('API', '[0-9a-f]+:([0-9a-f]+):[0-9a-f]+')[1]}`);
      return { userfaultfd: { features: features & UFFD_FEATURE_INITIALIZED ? features & ~UFFD_FEATURE_INITIALIZED : null } };
    }
    case FD_STATE_TARGETS.inotify:
      // fs/notify/fdinfo.c: each watch's wd, inode, device, mask, and the file handle of its inode.
      return {
        inotify: [...info.matchAll(/^inotify wd:([0-9a-f]+) ino:([0-9a-f]+) sdev:([0-9a-f]+) mask:([0-9a-f]+) ignored_mask:[0-9a-f]+(?: fhandle-bytes:[0-9a-f]+ fhandle-type:([0-9a-f]+) f_handle:([0-9a-f]*))?/gm)]
          .map(([, wd, ino, sdev, mask, type, handle]) => ({
            wd: parseInt(wd, 16), mask: parseInt(mask, 16), inode: BigInt(`0x${ino}`),
            path: handle === undefined ? null : resolve(parseInt(sdev, 16), parseInt(type, 16), Buffer.from(handle, 'hex')),
          }))
          .sort((a, b) => a.wd - b.wd),
      };
    default:
      return {};
  }
}

const UFFD_FEATURE_INITIALIZED = 1n << 31n;

/** Terminal character devices: tty/ttyS (4), tty, console and ptmx (5), pseudo-terminals (136-143). */
const TTY_MAJORS = new Set([4, 5, 136, 137, 138, 139, 140, 141, 142, 143]);
/**
 * makedev(5, 0), /dev/tty: the process's controlling terminal, whichever it is; makedev(5, 2),
 * /dev/ptmx: a pty's master side. A terminal's device number is the same in glibc's encoding (a
 * stat's rdev) and the kernel's (stat's tty_nr): their majors are below 4096.
 */
const DEV_TTY = 0x500n;
const DEV_PTMX = 0x502n;

/**
 * A terminal's modes and size, asked of our own copy of the descriptor (through /dev/tty too: the
 * copy reaches the terminal the process opened), and what it is to the process: its controlling
 * terminal (opened as /dev/tty, or the device of stat's tty_nr), and whether its group was the
 * foreground job there. A pty's master side is left out: its modes are not what a program set.
 */
function terminalOf(pid: number, fd: number, rdev: bigint, stat: ProcStat): { terminal?: TerminalState } {
  if (rdev === DEV_PTMX) return {};
  const modes = askOwnDescriptor(pid, fd, readTerminal);
  if (!modes) return {};
  const controlling = stat.ttyNr !== 0 && (rdev === DEV_TTY || rdev === BigInt(stat.ttyNr));
  return { terminal: { ...modes, controlling, foreground: controlling && stat.tpgid === stat.pgrp } };
}

function fdKind(st: FileStat): FdKind {
  if (st.isFile()) return 'file';
  if (st.isFIFO()) return 'pipe';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice() && TTY_MAJORS.has(major(st.rdev))) return 'tty';
  return 'other';
}

/** glibc's gnu_dev_major. */
function major(dev: bigint): number {
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
}
