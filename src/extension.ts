// The image extension: what a faithful restore needs beyond v0, appended after the v0 terminator
// (docs/format.md, "Extension"). A 16-byte header with its own magic, version and total length,
// then typed, length-prefixed records padded to 8 bytes, ending with an end record. A reader
// skips record types it does not know; everything it knows is checked, and the first problem is
// an ExtensionFormatError naming the byte offset in the image.

import type {
  EpollTarget, EventFdState, ExtensionFd, ExtensionMappedFile, ExtensionSigaction, ExtensionThread, FdKind, ImageExtension,
  IntervalTimer, PipeData, PosixTimer, ResourceLimit, RseqArea, SharedMemoryContents, SignalFdState, SignalStack, TimerFdState, UserfaultfdState,
  TimeSpec, UnixPeer, VmaFlags, FileLock, FileLockKind, BoundSocket, ThreadIdentity, SeccompFilter, ThreadSeccomp, SocketOption,
  ThreadScheduling, ProcessSettings, InotifyWatch, FileContent, ConnectedSocket, NetlinkSocket, UnboundSocket, TerminalState, OpenFileState, MappedContent,
} from './extension-model.js';
import {
  AF_INET, AF_INET6, AF_UNIX, CPU_MASK_MAX, IPPROTO_TCP, IPPROTO_UDP, pipesWithBothEnds, SOCK_DGRAM, SOCK_RAW, SOCK_STREAM, TCP_CLOSING,
  TCP_ESTABLISHED, TCP_LISTEN, TERMIOS_SIZE,
} from './extension-model.js';
import { CKPT_TLS_ENTRIES, FormatError, GDT_ENTRY_TLS_MIN, PAGE_RECORD_SIZE } from './format.js';
import type { UserRegs } from './model.js';
import { PAGE_SIZE, USER_REGS_ORDER } from './model.js';
import { PageIndex, PageIndexBuilder } from './pageindex.js';
import { fromWords } from './u64.js';
import { decodeUserDesc, encodeUserDesc, USER_DESC_SIZE } from './userdesc.js';
import { socketOptionLabel, SOCKET_OPTION_VALUE_MAX } from './socketoptions.js';
import { BPF_INSTRUCTION_SIZE, SECCOMP_MODE_FILTER, SECCOMP_MODE_STRICT, SIGINFO_SIZE } from './ptrace/syscalls.js';

/** "IMGX" in file order. */
export const EXTENSION_MAGIC = 0x58474d49;
export const EXTENSION_VERSION = 1;
/** u32 magic, u32 version, u64 length of the whole extension (header and end record included). */
export const EXTENSION_HEADER_SIZE = 16;
/** u32 type, u32 payload length; the payload follows, zero-padded to a multiple of 8. */
export const RECORD_HEADER_SIZE = 8;
/**
 * The most bytes an extension may have besides the page records of its SHARED_PAGES records (a
 * reader holds those other bytes in memory, and streams the pages): no extension this
 * implementation writes comes near it; a reader refuses more.
 */
export const EXTENSION_MAX_SIZE = 256 * 1024 * 1024;
/** The largest length a header may claim: the largest multiple of 8 below 2^53, shared pages included. */
const EXTENSION_LENGTH_LIMIT = 2 ** 53 - 8;

export const RecordType = {
  END: 0,
  EXE: 1,
  CWD: 2,
  BRK: 3,
  AUXV: 4,
  THREAD: 5,
  MAPPED_FILE: 6,
  SIGACTIONS: 7,
  FD: 8,
  THREAD_FUTEX: 9,
  THREAD_RSEQ: 10,
  THREAD_SIGALTSTACK: 11,
  PENDING_SIGNALS: 12,
  UMASK: 13,
  RLIMITS: 14,
  ITIMERS: 15,
  SHARED_PAGES: 16,
  POSIX_TIMERS: 17,
  EVENTFD: 18,
  EPOLL: 19,
  TIMERFD: 20,
  SIGNALFD: 21,
  VMA_FLAGS: 22,
  STOPPED: 23,
  PIPE_DATA: 24,
  UNIX_PEER: 25,
  FILE_LOCKS: 26,
  CHILDREN: 27,
  BOUND_SOCKET: 28,
  THREAD_IDENTITY: 29,
  SECCOMP_FILTER: 30,
  THREAD_SECCOMP: 31,
  SOCKET_OPTIONS: 32,
  THREAD_SCHEDULING: 33,
  PROCESS_SETTINGS: 34,
  INOTIFY: 35,
  CLOCKS: 36,
  FILE_CONTENT: 37,
  SOCKET_DATA: 38,
  SHARED_FD: 39,
  CONNECTED_SOCKET: 40,
  NETLINK_SOCKET: 41,
  UNBOUND_SOCKET: 42,
  TERMINAL: 43,
  FILE_STATE: 44,
  GUARD_PAGES: 45,
  MAPPED_CONTENT: 46,
  USERFAULTFD: 47,
} as const;

export const SIGNAL_COUNT = 64;
export const FPREGS_SIZE = 512;
/** struct user_desc. */
/** struct user_regs_struct: 27 u64. */
export const USER_REGS_SIZE = 27 * 8;
/** Fixed part of a THREAD record: tid, tls count, sigmask, regs, fpregs size, xstate size. */
export const THREAD_FIXED_SIZE = 4 + 4 + 8 + USER_REGS_SIZE + 4 + 4;
/** Fixed part of a MAPPED_FILE record: start, end, dev, inode, size, mtime_ns; the path follows. */
export const MAPPED_FILE_FIXED_SIZE = 6 * 8;
/** struct sigaction as the kernel's rt_sigaction takes it: handler, flags, restorer, mask. */
export const SIGACTION_SIZE = 32;
/** Fixed part of a SIGACTIONS record: u32 count, u32 pad; count sigactions follow. */
export const SIGACTIONS_FIXED_SIZE = 8;
/** Fixed part of an FD record: fd, kind, flags, pad, offset; the target follows. */
export const FD_FIXED_SIZE = 4 * 4 + 8;
/** A THREAD_FUTEX record: tid, pad, clear_child_tid, robust list head, robust list length. */
export const THREAD_FUTEX_SIZE = 4 + 4 + 3 * 8;
/** A THREAD_RSEQ record: tid, length, address, signature, pad. */
export const THREAD_RSEQ_SIZE = 4 + 4 + 8 + 4 + 4;
/** A THREAD_SIGALTSTACK record: tid, flags, sp, size. */
export const THREAD_SIGALTSTACK_SIZE = 4 + 4 + 8 + 8;
/** Fixed part of a PENDING_SIGNALS record: tid (0: the process's shared queue), count; count siginfos follow. */
export const PENDING_SIGNALS_FIXED_SIZE = 8;
/** A UMASK record: u32 mask. */
export const UMASK_SIZE = 4;
/** Fixed part of an RLIMITS record: u32 count, u32 pad; count (soft, hard) u64 pairs follow. */
export const RLIMITS_FIXED_SIZE = 8;
export const RLIMIT_SIZE = 16;
/** The resources a dump records, by number: RLIMIT_CPU (0) .. RLIMIT_RTTIME (15). */
export const RLIMIT_NAMES = [
  'CPU', 'FSIZE', 'DATA', 'STACK', 'CORE', 'RSS', 'NPROC', 'NOFILE', 'MEMLOCK', 'AS', 'LOCKS', 'SIGPENDING', 'MSGQUEUE',
  'NICE', 'RTPRIO', 'RTTIME',
].map((name) => `RLIMIT_${name}`);
export const RLIMIT_COUNT = RLIMIT_NAMES.length;
/** RLIM_INFINITY: no limit. */
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;
/** A limit as /proc/<pid>/limits shows it. */
export const rlimitText = (value: bigint): string => (value === RLIM_INFINITY ? 'unlimited' : String(value));
/** Far above the kernel's RLIM_NLIMITS, so a corrupt count is caught early. */
const RLIMITS_MAX = 64;
/** ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF. */
export const ITIMER_COUNT = 3;
/** struct itimerval: interval and value, each a timeval of s64 seconds and s64 microseconds. */
export const ITIMERVAL_SIZE = 32;
/** An ITIMERS record: the three timers in order. */
export const ITIMERS_SIZE = ITIMER_COUNT * ITIMERVAL_SIZE;
/** Fixed part of a SHARED_PAGES record: u64 start, u64 end, u32 count, u32 pad; count page records follow. */
export const SHARED_PAGES_FIXED_SIZE = 24;
/** Pages a writer puts in one SHARED_PAGES record (1 GiB): a record's length is a u32. */
export const SHARED_PAGES_PER_RECORD = 1 << 18;
/** Fixed part of a POSIX_TIMERS record: u32 count, u32 pad; count timers follow. */
export const POSIX_TIMERS_FIXED_SIZE = 8;
/** One timer of a POSIX_TIMERS record: id, clock, notify, signal, sigev_value, tid, pad, struct itimerspec. */
export const POSIX_TIMER_SIZE = 64;
/** sigev_notify values the kernel accepts. */
export const SIGEV_SIGNAL = 0;
export const SIGEV_NONE = 1;
export const SIGEV_THREAD = 2;
export const SIGEV_THREAD_ID = 4;
/** An EVENTFD record: fd, flags (bit 0: EFD_SEMAPHORE), count. */
export const EVENTFD_SIZE = 16;
export const EVENTFD_SEMAPHORE_FLAG = 1;
/** The largest count an eventfd holds: 2^64 - 2. */
const EVENTFD_COUNT_MAX = 0xffff_ffff_ffff_fffen;
/** Fixed part of an EPOLL record: fd, count; count targets (tfd, events, data) follow. */
export const EPOLL_FIXED_SIZE = 8;
export const EPOLL_TARGET_SIZE = 16;
/** A TIMERFD record: fd, clock, settime flags, pad, ticks, struct itimerspec. */
export const TIMERFD_SIZE = 56;
/** A SIGNALFD record: fd, pad, mask. */
export const SIGNALFD_SIZE = 16;
/** A USERFAULTFD record: fd, flags (bit 0: its UFFDIO_API is done), features. */
export const USERFAULTFD_SIZE = 16;
export const USERFAULTFD_API_DONE = 1;
/** Fixed part of a PIPE_DATA record: fd, capacity; the pipe's bytes follow. */
export const PIPE_DATA_FIXED_SIZE = 8;
/** The largest capacity F_SETPIPE_SZ takes (an int). */
const PIPE_CAPACITY_MAX = 2 ** 31;
/** A SHARED_FD record: fd, and the lower descriptor whose open file description it is too. */
export const SHARED_FD_SIZE = 8;
/** A UNIX_PEER record: fd, socket type, peer inode. */
export const UNIX_PEER_SIZE = 16;
/** The socket types a socket pair can have: SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET. */
export const SOCKET_PAIR_TYPES: ReadonlyMap<number, string> = new Map([[1, 'stream'], [2, 'dgram'], [5, 'seqpacket']]);
/**
 * Fixed part of a THREAD_IDENTITY record: tid, name length, name (16 bytes, NUL-padded), 4 uids,
 * 4 gids, 5 capability sets, securebits, no_new_privs, group count, pad; the u32 groups follow.
 */
export const THREAD_IDENTITY_FIXED_SIZE = 4 + 4 + 16 + 16 + 16 + 5 * 8 + 4 + 4 + 4 + 4;
/** TASK_COMM_LEN - 1: the longest name a thread has. */
const THREAD_NAME_MAX = 15;
/** NGROUPS_MAX. */
const GROUPS_MAX = 65536;
/**
 * Fixed part of a BOUND_SOCKET record: fd, family, type, protocol, flags, backlog, the socket
 * file's mode, uid and gid, pad; the sockaddr follows.
 */
export const BOUND_SOCKET_FIXED_SIZE = 32;
const BOUND_SOCKET_LISTENING = 1;
const BOUND_SOCKET_V6ONLY = 2;
const BOUND_SOCKET_REUSEPORT = 4;
const BOUND_SOCKET_FILE = 8;
/** sizeof(struct sockaddr_un): family and a 108-byte sun_path. */
const SOCKADDR_UN_MAX = 110;
/**
 * Fixed part of a CONNECTED_SOCKET record: fd, family, type, protocol, state, the lengths of the
 * local and the peer address; the two sockaddrs follow, back to back.
 */
export const CONNECTED_SOCKET_FIXED_SIZE = 16;
/** Fixed part of a NETLINK_SOCKET record: fd, type, protocol, group count; the u32 groups follow. */
export const NETLINK_SOCKET_FIXED_SIZE = 16;
/** MAX_LINKS: the kernel's netlink protocols are numbered below it. */
const NETLINK_PROTOCOLS = 32;
/** Far more groups than any netlink family has, so that a corrupt count is caught early. */
const NETLINK_GROUPS_MAX = 4096;
/** An UNBOUND_SOCKET record: fd, family, type, protocol, flags. */
export const UNBOUND_SOCKET_SIZE = 12;
const UNBOUND_SOCKET_REUSEADDR = 1;
const UNBOUND_SOCKET_REUSEPORT = 2;
const UNBOUND_SOCKET_V6ONLY = 4;
/** A FILE_STATE record: fd, 0, dev, inode, size, mtime in ns (i64). */
export const FILE_STATE_SIZE = 40;

/** A TERMINAL record: fd, flags, struct termios, struct winsize (rows, columns, xpixels, ypixels as u16). */
export const TERMINAL_SIZE = 8 + TERMIOS_SIZE + 8;
/** TERMINAL flags: the process's controlling terminal; its process group was the terminal's foreground group. */
export const TERMINAL_CONTROLLING = 1;
export const TERMINAL_FOREGROUND = 2;
/** Payload offset of the termios, and of the winsize whose u16 fields follow in this order. */
const TERMINAL_TERMIOS_AT = 8;
const TERMINAL_WINSIZE_AT = TERMINAL_TERMIOS_AT + TERMIOS_SIZE;
const WINSIZE_FIELDS = ['rows', 'columns', 'xpixels', 'ypixels'] as const;

/** Fixed part of a FILE_LOCKS record: fd, count; count locks (kind, type, start, end) follow. */
export const FILE_LOCKS_FIXED_SIZE = 8;
export const FILE_LOCK_SIZE = 24;
/** On-disk codes: kind 1 flock, 2 POSIX, 3 OFD; type 1 read (shared), 2 write (exclusive). */
export const FILE_LOCK_KINDS: readonly FileLockKind[] = ['flock', 'posix', 'ofd'];
const FILE_LOCK_READ = 1;
const FILE_LOCK_WRITE = 2;
/** The end of a lock that runs to the end of the file, whatever its length. */
const FILE_LOCK_TO_EOF = 0xffff_ffff_ffff_ffffn;
/** Fixed part of a MAPPED_CONTENT record: dev, inode, mode, pad, size; the bytes follow. */
export const MAPPED_CONTENT_FIXED_SIZE = 32;
/** The most bytes one MAPPED_CONTENT record carries. */
export const MAPPED_CONTENT_MAX = 32 << 20;
/** A GUARD_PAGES entry: u64 start, u64 end. */
export const GUARD_PAGES_ENTRY_SIZE = 16;
/** Fixed part of a CHILDREN record: count, pad; count u32 pids follow. */
export const CHILDREN_FIXED_SIZE = 8;
/** PID_MAX_LIMIT on 64-bit kernels: no pid is above it. */
const PID_MAX = 4 * 1024 * 1024;
/** Fixed part of a SECCOMP_FILTER record: index, flags, instruction count, pad; the instructions follow. */
export const SECCOMP_FILTER_FIXED_SIZE = 16;
/** BPF_MAXINSNS: the kernel takes no longer program. */
const BPF_MAX_INSTRUCTIONS = 4096;
/** SECCOMP_FILTER flags bit 0: installed with SECCOMP_FILTER_FLAG_LOG. */
const SECCOMP_FILTER_LOG = 1;
/** Fixed part of a THREAD_SECCOMP record: tid, mode (1 strict, 2 filter), filter count, pad; the u32 indices follow. */
export const THREAD_SECCOMP_FIXED_SIZE = 16;
/** Fixed part of a SOCKET_OPTIONS record: fd, count; count options follow. */
export const SOCKET_OPTIONS_FIXED_SIZE = 8;
/** One option of a SOCKET_OPTIONS record: level, name, value length, pad, the value zero-padded. */
export const SOCKET_OPTION_SIZE = 16 + SOCKET_OPTION_VALUE_MAX;
/** Far more than src/socketoptions.ts lists, so a corrupt count is caught early. */
const SOCKET_OPTIONS_MAX = 256;
/**
 * Fixed part of a THREAD_SCHEDULING record: tid, struct sched_attr's fields (policy, flags, nice,
 * priority, runtime, deadline, period, util_min, util_max), ioprio, the mask's length, timer
 * slack; the CPU mask follows.
 */
export const THREAD_SCHEDULING_FIXED_SIZE = 72;
/** Fixed part of an INOTIFY record: fd, count; count watches follow. */
export const INOTIFY_FIXED_SIZE = 8;
/** Fixed part of a watch: wd, mask, inode, path length, pad; the path follows, zero-padded to 8 bytes. */
export const INOTIFY_WATCH_FIXED_SIZE = 24;
/** The kernel's own limit is per user (max_user_watches, 8192 by default and up to a million). */
const INOTIFY_WATCHES_MAX = 1 << 22;
/** Fixed part of a FILE_CONTENT record: fd, flags (bit 0: memfd), seals, mode, size; the bytes follow. */
export const FILE_CONTENT_FIXED_SIZE = 24;
const FILE_CONTENT_MEMFD = 1;
/** The largest file whose bytes a dump carries; larger ones are left out, as every deleted file was. */
export const FILE_CONTENT_MAX = 16 << 20;
/** Fixed part of a SOCKET_DATA record: fd, count; count messages (u32 length, u32 pad, bytes padded to 8) follow. */
export const SOCKET_DATA_FIXED_SIZE = 8;
const SOCKET_MESSAGE_FIXED_SIZE = 8;
/** The most bytes a SOCKET_DATA record carries (far above any socket buffer). */
export const SOCKET_DATA_MAX = 16 << 20;
/** A CLOCKS record: CLOCK_MONOTONIC and CLOCK_BOOTTIME, each a timespec. */
export const CLOCKS_SIZE = 32;
/** A PROCESS_SETTINGS record: oom_score_adj, personality. */
export const PROCESS_SETTINGS_SIZE = 8;
/** A VMA_FLAGS entry: u64 start, u32 flags, u32 pad. */
export const VMA_FLAGS_ENTRY_SIZE = 16;

/**
 * VMA_FLAGS bits: what smaps's VmFlags shows of madvise(2), mlock(2), mseal(2) and mmap's
 * MAP_GROWSDOWN, by its two-letter mnemonic, and the advice that sets it again (none for the
 * others: mlock2 does, with MLOCK_ONFAULT when lockonfault is set too; mseal; growsdown is the
 * stack's, mapped so from the start).
 */
export const VMA_FLAGS = [
  { bit: 1 << 0, name: 'locked', mnemonic: 'lo', advice: null },
  { bit: 1 << 1, name: 'dontfork', mnemonic: 'dc', advice: 10 },
  { bit: 1 << 2, name: 'wipeonfork', mnemonic: 'wf', advice: 18 },
  { bit: 1 << 3, name: 'dontdump', mnemonic: 'dd', advice: 16 },
  { bit: 1 << 4, name: 'hugepage', mnemonic: 'hg', advice: 14 },
  { bit: 1 << 5, name: 'nohugepage', mnemonic: 'nh', advice: 15 },
  { bit: 1 << 6, name: 'mergeable', mnemonic: 'mg', advice: 12 },
  { bit: 1 << 7, name: 'sequential', mnemonic: 'sr', advice: 2 },
  { bit: 1 << 8, name: 'random', mnemonic: 'rr', advice: 1 },
  { bit: 1 << 9, name: 'lockonfault', mnemonic: 'lf', advice: null },
  { bit: 1 << 10, name: 'growsdown', mnemonic: 'gd', advice: null },
  { bit: 1 << 11, name: 'sealed', mnemonic: 'sl', advice: null },
  { bit: 1 << 12, name: 'userfault-missing', mnemonic: 'um', advice: null },
  { bit: 1 << 13, name: 'userfault-wp', mnemonic: 'uw', advice: null },
  { bit: 1 << 14, name: 'userfault-minor', mnemonic: 'ui', advice: null },
] as const;
export const VMA_LOCKED = VMA_FLAGS[0].bit;
export const VMA_LOCKONFAULT = VMA_FLAGS[9].bit;
export const VMA_GROWSDOWN = VMA_FLAGS[10].bit;
export const VMA_SEALED = VMA_FLAGS[11].bit;
/** The userfault bits, in the order of UFFDIO_REGISTER's modes (missing 1, wp 2, minor 4). */
export const VMA_USERFAULT = [VMA_FLAGS[12].bit, VMA_FLAGS[13].bit, VMA_FLAGS[14].bit] as const;
const VMA_FLAGS_KNOWN = VMA_FLAGS.reduce((all, f) => all | f.bit, 0);
/** The link target of each anon-inode descriptor a record describes. */
export const FD_STATE_TARGETS = {
  eventfd: 'anon_inode:[eventfd]',
  epoll: 'anon_inode:[eventpoll]',
  timerfd: 'anon_inode:[timerfd]',
  signalfd: 'anon_inode:[signalfd]',
  inotify: 'anon_inode:inotify',
  userfaultfd: 'anon_inode:[userfaultfd]',
} as const;
type FdStateKey = keyof typeof FD_STATE_TARGETS;
const SIGEV_NOTIFY_VALUES = [SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID];
const NSEC_PER_SEC = 1_000_000_000;
/** The pid or tid a CPU-time clock id names (0: the caller's process or thread); null for any other clock. */
export const cpuClockTarget = (clock: number): number | null => (clock < 0 ? ~(clock >> 3) : null);
/** The same kind of CPU-time clock, naming another pid or tid. */
export const withCpuClockTarget = (clock: number, pid: number): number => (~pid << 3) | (clock & 7);
const AUXV_ENTRY_SIZE = 16;
/** Far above any XSAVE area x86 defines (AMX included), so a corrupt size is caught early. */
const XSTATE_MAX_SIZE = 1 << 20;

export const FD_KINDS: readonly FdKind[] = ['file', 'pipe', 'socket', 'tty', 'other'];
/** On-disk code of a kind: its index in FD_KINDS, plus one (0 is never valid). */
const fdKindCode = (kind: FdKind): number => FD_KINDS.indexOf(kind) + 1;

/** A problem in an extension, at a byte offset of the image. */
export class ExtensionFormatError extends Error {
  readonly offset: number;
  readonly problem: string;
  constructor(offset: number, problem: string) {
    super(`byte ${offset}: ${problem}`);
    this.name = 'ExtensionFormatError';
    this.offset = offset;
    this.problem = problem;
  }
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;
const recordSize = (payload: number): number => RECORD_HEADER_SIZE + align8(payload);
const utf8Length = (text: string): number => Buffer.byteLength(text, 'utf8');
const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

/** What an extension's size depends on: enough to compute it exactly without the values. */
export interface ExtensionShape {
  exe: string;
  cwd: string;
  auxvLength: number;
  threads: {
    tlsCount: number; xstateSize: number; futexes: boolean; rseq: boolean; sigaltstack: boolean;
    /** Signals in the thread's queue; null: no PENDING_SIGNALS record. */
    pendingSignals: number | null;
    /** Supplementary groups in its THREAD_IDENTITY record; null: none. */
    groups: number | null;
    /** Filters its THREAD_SECCOMP record names (0 in strict mode); null: no record. */
    seccompFilters: number | null;
    /** Bytes of the CPU mask in its THREAD_SCHEDULING record; null: no record. */
    cpuMaskBytes: number | null;
  }[];
  /** Signals in the shared queue; null: no PENDING_SIGNALS record. */
  sharedPendingSignals: number | null;
  umask: boolean;
  /** Resources in the RLIMITS record; null: none. */
  rlimits: number | null;
  itimers: boolean;
  /** Timers in the POSIX_TIMERS record; null: none. */
  posixTimers: number | null;
  filePaths: string[];
  fds: FdShape[];
  /** Pages carried of each shared VMA that has SHARED_PAGES records. */
  sharedPages: number[];
  /** Entries of the VMA_FLAGS record; null: none. */
  vmaFlags: number | null;
  stopped: boolean;
  /** Pids in the CHILDREN record; null: none. */
  children: number | null;
  /** Runs in the GUARD_PAGES record; null: none. */
  guardPages: number | null;
  /** Bytes of each MAPPED_CONTENT record. */
  mappedContents: number[];
  /** Instructions of each SECCOMP_FILTER record. */
  seccompPrograms: number[];
  settings: boolean;
  clocks: boolean;
}

/** What an fd's records take: its FD record's target, and which state record it has (EPOLL: its target count). */
export interface FdShape {
  target: string;
  eventfd: boolean;
  /** Watched descriptors in its EPOLL record; null: none. */
  epollTargets: number | null;
  timerfd: boolean;
  signalfd: boolean;
  userfaultfd: boolean;
  /** Bytes in its PIPE_DATA record; null: none. */
  pipeBytes: number | null;
  unixPeer: boolean;
  /** Bytes of the address in its BOUND_SOCKET record; null: none. */
  boundAddress: number | null;
  /** Bytes of the two addresses in its CONNECTED_SOCKET record; null: none. */
  connectedAddresses: number | null;
  /** Groups in its NETLINK_SOCKET record; null: none. */
  netlinkGroups: number | null;
  unboundSocket: boolean;
  terminal: boolean;
  fileState: boolean;
  /** Locks in its FILE_LOCKS record; null: none. */
  locks: number | null;
  /** Options in its SOCKET_OPTIONS record; null: none. */
  socketOptions: number | null;
  /** Path bytes of each watch of its INOTIFY record; null: none. */
  inotifyPaths: number[] | null;
  /** Bytes of the file in its FILE_CONTENT record; null: none. */
  contentBytes: number | null;
  /** Bytes of each message in its SOCKET_DATA record; null: none. */
  queuedMessages: number[] | null;
  sharesWith: boolean;
}

export function fdShape(fd: ExtensionFd): FdShape {
  return {
    target: fd.target, eventfd: fd.eventfd !== undefined, epollTargets: fd.epoll?.length ?? null,
    timerfd: fd.timerfd !== undefined, signalfd: fd.signalfd !== undefined, userfaultfd: fd.userfaultfd !== undefined, pipeBytes: fd.pipeData?.bytes.length ?? null,
    unixPeer: fd.unixPeer !== undefined, boundAddress: fd.boundSocket?.address.length ?? null,
    connectedAddresses: fd.connectedSocket ? fd.connectedSocket.local.length + fd.connectedSocket.peer.length : null,
    netlinkGroups: fd.netlink?.groups.length ?? null, unboundSocket: fd.unboundSocket !== undefined, locks: fd.locks?.length ?? null,
    socketOptions: fd.socketOptions?.length ?? null,
    inotifyPaths: fd.inotify?.map((w) => (w.path === null ? 0 : utf8Length(w.path))) ?? null,
    contentBytes: fd.content?.bytes.length ?? null,
    queuedMessages: fd.queued?.map((m) => m.length) ?? null,
    sharesWith: fd.sharesWith !== undefined, terminal: fd.terminal !== undefined, fileState: fd.fileState !== undefined,
  };
}

const fdRecordsSize = (fd: FdShape): number =>
  recordSize(FD_FIXED_SIZE + utf8Length(fd.target)) +
  (fd.eventfd ? recordSize(EVENTFD_SIZE) : 0) +
  (fd.epollTargets === null ? 0 : recordSize(EPOLL_FIXED_SIZE + fd.epollTargets * EPOLL_TARGET_SIZE)) +
  (fd.timerfd ? recordSize(TIMERFD_SIZE) : 0) +
  (fd.signalfd ? recordSize(SIGNALFD_SIZE) : 0) +
  (fd.userfaultfd ? recordSize(USERFAULTFD_SIZE) : 0) +
  (fd.pipeBytes === null ? 0 : recordSize(PIPE_DATA_FIXED_SIZE + fd.pipeBytes)) +
  (fd.unixPeer ? recordSize(UNIX_PEER_SIZE) : 0) +
  (fd.boundAddress === null ? 0 : recordSize(BOUND_SOCKET_FIXED_SIZE + fd.boundAddress)) +
  (fd.socketOptions === null ? 0 : recordSize(SOCKET_OPTIONS_FIXED_SIZE + fd.socketOptions * SOCKET_OPTION_SIZE)) +
  (fd.inotifyPaths === null ? 0 : recordSize(INOTIFY_FIXED_SIZE + fd.inotifyPaths.reduce((sum, n) => sum + INOTIFY_WATCH_FIXED_SIZE + align8(n), 0))) +
  (fd.contentBytes === null ? 0 : recordSize(FILE_CONTENT_FIXED_SIZE + fd.contentBytes)) +
  (fd.queuedMessages === null ? 0 : recordSize(socketDataSize(fd.queuedMessages))) +
  (fd.sharesWith ? recordSize(SHARED_FD_SIZE) : 0) +
  (fd.connectedAddresses === null ? 0 : recordSize(CONNECTED_SOCKET_FIXED_SIZE + fd.connectedAddresses)) +
  (fd.netlinkGroups === null ? 0 : recordSize(NETLINK_SOCKET_FIXED_SIZE + 4 * fd.netlinkGroups)) +
  (fd.unboundSocket ? recordSize(UNBOUND_SOCKET_SIZE) : 0) +
  (fd.terminal ? recordSize(TERMINAL_SIZE) : 0) +
  (fd.fileState ? recordSize(FILE_STATE_SIZE) : 0) +
  (fd.locks === null ? 0 : recordSize(FILE_LOCKS_FIXED_SIZE + fd.locks * FILE_LOCK_SIZE));

export function shapeOf(ext: ImageExtension): ExtensionShape {
  return {
    exe: ext.exe,
    cwd: ext.cwd,
    auxvLength: ext.auxv.length,
    threads: ext.threads.map((t) => ({
      tlsCount: t.tls.length, xstateSize: t.xstate.length, futexes: hasFutexRecord(t), rseq: t.rseq !== undefined,
      sigaltstack: t.sigaltstack !== undefined, pendingSignals: t.pendingSignals?.length ?? null,
      groups: t.identity?.groups.length ?? null,
      seccompFilters: t.seccomp === undefined ? null : t.seccomp.mode === 'strict' ? 0 : t.seccomp.filters.length,
      cpuMaskBytes: t.scheduling?.cpus.length ?? null,
    })),
    sharedPendingSignals: ext.sharedPendingSignals?.length ?? null,
    umask: ext.umask !== undefined,
    rlimits: ext.rlimits?.length ?? null,
    itimers: ext.itimers !== undefined,
    posixTimers: ext.posixTimers?.length ?? null,
    filePaths: ext.files.map((f) => f.path),
    fds: ext.fds.map(fdShape),
    sharedPages: (ext.sharedMemory ?? []).map((m) => m.pages.totalPages),
    vmaFlags: ext.vmaFlags === undefined ? null : Array.isArray(ext.vmaFlags) ? ext.vmaFlags.length : ext.vmaFlags.count,
    stopped: ext.stopped === true,
    children: ext.children?.length ?? null,
    guardPages: ext.guardPages?.length ?? null,
    mappedContents: (ext.mappedContents ?? []).map((c) => c.bytes.length),
    seccompPrograms: (ext.seccompFilters ?? []).map((f) => f.program.length / BPF_INSTRUCTION_SIZE),
    settings: ext.settings !== undefined,
    clocks: ext.clocks !== undefined,
  };
}

/** Bytes the encoded extension of this shape takes, its shared pages' records included. */
export function extensionSize(shape: ExtensionShape): number {
  return extensionBytesSize(shape) + shape.sharedPages.reduce((sum, pages) => sum + pages * PAGE_RECORD_SIZE, 0);
}

/** SHARED_PAGES records a VMA with this many pages takes: one at least, even without pages. */
const sharedPagesRecords = (pages: number): number => Math.max(1, Math.ceil(pages / SHARED_PAGES_PER_RECORD));

/** Bytes of the extension of this shape other than its shared pages' records: what EXTENSION_MAX_SIZE bounds. */
function extensionBytesSize(shape: ExtensionShape): number {
  return EXTENSION_HEADER_SIZE +
    recordSize(utf8Length(shape.exe)) +
    recordSize(utf8Length(shape.cwd)) +
    recordSize(8) +
    recordSize(shape.auxvLength) +
    shape.threads.reduce((sum, t) => sum + recordSize(threadPayloadSize(t.tlsCount, t.xstateSize)), 0) +
    shape.filePaths.reduce((sum, path) => sum + recordSize(MAPPED_FILE_FIXED_SIZE + utf8Length(path)), 0) +
    recordSize(SIGACTIONS_FIXED_SIZE + SIGNAL_COUNT * SIGACTION_SIZE) +
    shape.fds.reduce((sum, fd) => sum + fdRecordsSize(fd), 0) +
    shape.threads.filter((t) => t.futexes).length * recordSize(THREAD_FUTEX_SIZE) +
    shape.threads.filter((t) => t.rseq).length * recordSize(THREAD_RSEQ_SIZE) +
    shape.threads.filter((t) => t.sigaltstack).length * recordSize(THREAD_SIGALTSTACK_SIZE) +
    shape.threads.reduce((sum, t) => sum + (t.groups === null ? 0 : recordSize(THREAD_IDENTITY_FIXED_SIZE + 4 * t.groups)), 0) +
    [shape.sharedPendingSignals, ...shape.threads.map((t) => t.pendingSignals)]
      .reduce<number>((sum, count) => sum + (count === null ? 0 : recordSize(PENDING_SIGNALS_FIXED_SIZE + count * SIGINFO_SIZE)), 0) +
    (shape.umask ? recordSize(UMASK_SIZE) : 0) +
    (shape.rlimits === null ? 0 : recordSize(RLIMITS_FIXED_SIZE + shape.rlimits * RLIMIT_SIZE)) +
    (shape.itimers ? recordSize(ITIMERS_SIZE) : 0) +
    shape.sharedPages.reduce((sum, pages) => sum + sharedPagesRecords(pages) * recordSize(SHARED_PAGES_FIXED_SIZE), 0) +
    (shape.posixTimers === null ? 0 : recordSize(POSIX_TIMERS_FIXED_SIZE + shape.posixTimers * POSIX_TIMER_SIZE)) +
    (shape.vmaFlags === null ? 0 : recordSize(shape.vmaFlags * VMA_FLAGS_ENTRY_SIZE)) +
    (shape.stopped ? recordSize(0) : 0) +
    (shape.children === null ? 0 : recordSize(CHILDREN_FIXED_SIZE + 4 * shape.children)) +
    (shape.guardPages === null ? 0 : recordSize(shape.guardPages * GUARD_PAGES_ENTRY_SIZE)) +
    shape.mappedContents.reduce((sum, length) => sum + recordSize(MAPPED_CONTENT_FIXED_SIZE + length), 0) +
    shape.seccompPrograms.reduce((sum, count) => sum + recordSize(SECCOMP_FILTER_FIXED_SIZE + count * BPF_INSTRUCTION_SIZE), 0) +
    shape.threads.reduce((sum, t) => sum + (t.seccompFilters === null ? 0 : recordSize(THREAD_SECCOMP_FIXED_SIZE + 4 * t.seccompFilters)), 0) +
    shape.threads.reduce((sum, t) => sum + (t.cpuMaskBytes === null ? 0 : recordSize(THREAD_SCHEDULING_FIXED_SIZE + t.cpuMaskBytes)), 0) +
    (shape.settings ? recordSize(PROCESS_SETTINGS_SIZE) : 0) +
    (shape.clocks ? recordSize(CLOCKS_SIZE) : 0) +
    recordSize(0);
}

const threadPayloadSize = (tlsCount: number, xstateSize: number): number =>
  THREAD_FIXED_SIZE + tlsCount * USER_DESC_SIZE + FPREGS_SIZE + xstateSize;

/** Images from before THREAD_FUTEX existed decode without these fields: no record for them. */
const hasFutexRecord = (t: ExtensionThread): boolean => t.clearChildTid !== undefined || t.robustList !== undefined;

// ---------------------------------------------------------------------------------------------
// Encoding

/**
 * What an extension is made of: bytes, and between them the page records of SHARED_PAGES records
 * (for each page of the index, its u64 address and its 4096 bytes), whose bytes are the target's.
 */
export type ExtensionPiece = Buffer | PageIndex | DeferredBytes;

/** Bytes of the extension known by number only, made when first wanted (produce returns exactly length bytes). */
export interface DeferredBytes {
  length: number;
  produce(): Buffer;
}

/** Appends records to one buffer sized up front; page records are left out of it, as pieces. */
class RecordWriter {
  private pos = EXTENSION_HEADER_SIZE;
  /** Where the bytes not yet in a piece start. */
  private cut = 0;
  private readonly pieces: ExtensionPiece[] = [];
  constructor(readonly buf: Buffer) {}

  /** Starts a record whose payload is `fixed` bytes and the page records of `pages`; returns the payload's offset. */
  recordWithPages(type: number, fixed: number, pages: PageIndex): number {
    const at = this.record(type, fixed + pages.totalPages * PAGE_RECORD_SIZE);
    this.pos = at + fixed;
    this.pieces.push(this.buf.subarray(this.cut, this.pos), pages);
    this.cut = this.pos;
    return at;
  }

  /** Starts a record whose whole payload `later` makes when it is first wanted. */
  deferredRecord(type: number, later: DeferredBytes): void {
    const at = this.record(type, later.length);
    this.pieces.push(this.buf.subarray(this.cut, at), later);
    this.cut = at + later.length;
  }

  /** Every piece, once the last record is written. */
  finish(): ExtensionPiece[] {
    return [...this.pieces, this.buf.subarray(this.cut, this.pos)];
  }

  /** Starts a record of `length` payload bytes; returns the payload's offset. */
  record(type: number, length: number): number {
    this.buf.writeUInt32LE(type, this.pos);
    this.buf.writeUInt32LE(length, this.pos + 4);
    const payload = this.pos + RECORD_HEADER_SIZE;
    this.pos = payload + align8(length); // the buffer is zero-filled: padding stays 0
    return payload;
  }

  text(type: number, text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    bytes.copy(this.buf, this.record(type, bytes.length));
  }

  get size(): number {
    return this.pos;
  }
}

function u32(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new FormatError(`${what} ${value} does not fit in a u32`);
  return value;
}

/** A u64 field; a number must be a safe integer, as the decoder reads it back into one. */
function u64(value: number | bigint, what: string): bigint {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new FormatError(`${what} ${value} is not an exact integer`);
  const v = BigInt(value);
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new FormatError(`${what} ${value} does not fit in a u64`);
  return v;
}

function writeThread(w: RecordWriter, t: ExtensionThread): void {
  if (t.tls.length > CKPT_TLS_ENTRIES) throw new FormatError(`thread ${t.tid}: ${t.tls.length} TLS entries, at most ${CKPT_TLS_ENTRIES}`);
  if (t.fpregs.length !== FPREGS_SIZE) throw new FormatError(`thread ${t.tid}: fpregs is ${t.fpregs.length} bytes, not ${FPREGS_SIZE}`);
  if (t.xstate.length > XSTATE_MAX_SIZE) throw new FormatError(`thread ${t.tid}: xstate of ${t.xstate.length} bytes is too large`);
  const buf = w.buf;
  const at = w.record(RecordType.THREAD, threadPayloadSize(t.tls.length, t.xstate.length));
  buf.writeUInt32LE(t.tid, at);
  buf.writeUInt32LE(t.tls.length, at + 4);
  buf.writeBigUInt64LE(u64(t.sigmask, `thread ${t.tid} sigmask`), at + 8);
  USER_REGS_ORDER.forEach((name, i) => buf.writeBigUInt64LE(BigInt.asUintN(64, t.regs[name]), at + 16 + i * 8));
  buf.writeUInt32LE(FPREGS_SIZE, at + 16 + USER_REGS_SIZE);
  buf.writeUInt32LE(t.xstate.length, at + 20 + USER_REGS_SIZE);
  let pos = at + THREAD_FIXED_SIZE;
  for (const desc of t.tls) {
    encodeUserDesc(buf, pos, desc);
    pos += USER_DESC_SIZE;
  }
  t.fpregs.copy(buf, pos);
  t.xstate.copy(buf, pos + FPREGS_SIZE);
}

function writeMappedFile(w: RecordWriter, f: ExtensionMappedFile): void {
  const path = Buffer.from(f.path, 'utf8');
  const at = w.record(RecordType.MAPPED_FILE, MAPPED_FILE_FIXED_SIZE + path.length);
  const what = `mapped file ${hex(f.start)}-${hex(f.end)}`;
  w.buf.writeBigUInt64LE(u64(f.start, `${what} start`), at);
  w.buf.writeBigUInt64LE(u64(f.end, `${what} end`), at + 8);
  w.buf.writeBigUInt64LE(u64(f.dev, `${what} dev`), at + 16);
  w.buf.writeBigUInt64LE(u64(f.inode, `${what} inode`), at + 24);
  w.buf.writeBigUInt64LE(u64(f.size, `${what} size`), at + 32);
  w.buf.writeBigInt64LE(BigInt.asIntN(64, f.mtimeNs), at + 40);
  path.copy(w.buf, at + MAPPED_FILE_FIXED_SIZE);
}

function writeSigactions(w: RecordWriter, actions: readonly ExtensionSigaction[]): void {
  if (actions.length !== SIGNAL_COUNT) throw new FormatError(`${actions.length} signal dispositions, expected ${SIGNAL_COUNT}`);
  const at = w.record(RecordType.SIGACTIONS, SIGACTIONS_FIXED_SIZE + SIGNAL_COUNT * SIGACTION_SIZE);
  w.buf.writeUInt32LE(SIGNAL_COUNT, at);
  actions.forEach((a, i) => {
    const pos = at + SIGACTIONS_FIXED_SIZE + i * SIGACTION_SIZE;
    w.buf.writeBigUInt64LE(BigInt.asUintN(64, a.handler), pos);
    w.buf.writeBigUInt64LE(BigInt.asUintN(64, a.flags), pos + 8);
    w.buf.writeBigUInt64LE(BigInt.asUintN(64, a.restorer), pos + 16);
    w.buf.writeBigUInt64LE(BigInt.asUintN(64, a.mask), pos + 24);
  });
}

function writeFd(w: RecordWriter, f: ExtensionFd): void {
  const code = fdKindCode(f.kind);
  if (code === 0) throw new FormatError(`fd ${f.fd}: unknown kind '${f.kind}'`);
  if (!isFdNumber(f.fd)) throw new FormatError(`fd ${f.fd} is not a file descriptor number`);
  const target = Buffer.from(f.target, 'utf8');
  const at = w.record(RecordType.FD, FD_FIXED_SIZE + target.length);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt32LE(code, at + 4);
  w.buf.writeUInt32LE(f.flags >>> 0, at + 8);
  w.buf.writeBigUInt64LE(u64(f.offset, `fd ${f.fd} offset`), at + 16);
  target.copy(w.buf, at + FD_FIXED_SIZE);
}

/** Checks that an fd with a state record is the anon inode that state belongs to. */
function checkFdStateTarget(f: ExtensionFd, key: FdStateKey): void {
  if (f.target !== FD_STATE_TARGETS[key]) throw new FormatError(`fd ${f.fd}: ${key} state on ${f.target}, not ${FD_STATE_TARGETS[key]}`);
}

function writeEventFd(w: RecordWriter, f: ExtensionFd, state: EventFdState): void {
  checkFdStateTarget(f, 'eventfd');
  if (state.count < 0n || state.count > EVENTFD_COUNT_MAX) throw new FormatError(`fd ${f.fd}: eventfd count ${state.count} out of range`);
  const at = w.record(RecordType.EVENTFD, EVENTFD_SIZE);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt32LE(state.semaphore ? EVENTFD_SEMAPHORE_FLAG : 0, at + 4);
  w.buf.writeBigUInt64LE(state.count, at + 8);
}

function writeEpoll(w: RecordWriter, f: ExtensionFd, targets: readonly EpollTarget[]): void {
  checkFdStateTarget(f, 'epoll');
  const at = w.record(RecordType.EPOLL, EPOLL_FIXED_SIZE + targets.length * EPOLL_TARGET_SIZE);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt32LE(targets.length, at + 4);
  targets.forEach((target, i) => {
    if (!isFdNumber(target.fd)) throw new FormatError(`fd ${f.fd}: epoll target ${target.fd} is not a file descriptor number`);
    const pos = at + EPOLL_FIXED_SIZE + i * EPOLL_TARGET_SIZE;
    w.buf.writeUInt32LE(target.fd, pos);
    w.buf.writeUInt32LE(u32(target.events, `fd ${f.fd} epoll target ${target.fd} events`), pos + 4);
    w.buf.writeBigUInt64LE(u64(target.data, `fd ${f.fd} epoll target ${target.fd} data`), pos + 8);
  });
}

function writeTimerFd(w: RecordWriter, f: ExtensionFd, timer: TimerFdState): void {
  checkFdStateTarget(f, 'timerfd');
  if (!isInt32(timer.clock)) throw new FormatError(`fd ${f.fd}: timerfd clock ${timer.clock} is not a clock id`);
  const at = w.record(RecordType.TIMERFD, TIMERFD_SIZE);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeInt32LE(timer.clock, at + 4);
  w.buf.writeUInt32LE(u32(timer.settimeFlags, `fd ${f.fd} timerfd settime flags`), at + 8);
  w.buf.writeBigUInt64LE(u64(timer.ticks, `fd ${f.fd} timerfd ticks`), at + 16);
  writeTimeSpecs(w.buf, at + 24, [timer.interval, timer.value], `fd ${f.fd} timerfd`);
}

function writeSignalFd(w: RecordWriter, f: ExtensionFd, state: SignalFdState): void {
  checkFdStateTarget(f, 'signalfd');
  const at = w.record(RecordType.SIGNALFD, SIGNALFD_SIZE);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeBigUInt64LE(u64(state.mask, `fd ${f.fd} signalfd mask`), at + 8);
}

function writeUserfaultfd(w: RecordWriter, f: ExtensionFd, state: UserfaultfdState): void {
  checkFdStateTarget(f, 'userfaultfd');
  const at = w.record(RecordType.USERFAULTFD, USERFAULTFD_SIZE);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt32LE(state.features === null ? 0 : USERFAULTFD_API_DONE, at + 4);
  w.buf.writeBigUInt64LE(u64(state.features ?? 0n, `fd ${f.fd} userfaultfd features`), at + 8);
}

function writePipeData(w: RecordWriter, f: ExtensionFd, data: PipeData): void {
  const problem = pipeDataProblem(data.capacity, data.bytes.length);
  if (problem !== null) throw new FormatError(`fd ${f.fd}: ${problem}`);
  const at = w.record(RecordType.PIPE_DATA, PIPE_DATA_FIXED_SIZE + data.bytes.length);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt32LE(data.capacity, at + 4);
  data.bytes.copy(w.buf, at + PIPE_DATA_FIXED_SIZE);
}

function writeUnixPeer(w: RecordWriter, f: ExtensionFd, peer: UnixPeer): void {
  if (!SOCKET_PAIR_TYPES.has(peer.type)) throw new FormatError(`fd ${f.fd}: socket type ${peer.type} is not one of a socket pair`);
  const at = w.record(RecordType.UNIX_PEER, UNIX_PEER_SIZE);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt32LE(peer.type, at + 4);
  w.buf.writeBigUInt64LE(u64(peer.peer, `fd ${f.fd} peer inode`), at + 8);
}

function writeSharedFd(w: RecordWriter, f: ExtensionFd, original: number): void {
  if (!isFdNumber(original) || original >= f.fd) throw new FormatError(`fd ${f.fd}: shares the open file of fd ${original}, which is not a lower descriptor`);
  const at = w.record(RecordType.SHARED_FD, SHARED_FD_SIZE);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt32LE(original, at + 4);
}

function writeBoundSocket(w: RecordWriter, f: ExtensionFd, socket: BoundSocket): void {
  const problem = boundSocketProblem(socket);
  if (problem !== null) throw new FormatError(`fd ${f.fd}: ${problem.message}`);
  const at = w.record(RecordType.BOUND_SOCKET, BOUND_SOCKET_FIXED_SIZE + socket.address.length);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt16LE(socket.family, at + 4);
  w.buf.writeUInt16LE(socket.type, at + 6);
  w.buf.writeUInt16LE(socket.protocol, at + 8);
  const flags = (socket.listening ? BOUND_SOCKET_LISTENING : 0) | (socket.v6only ? BOUND_SOCKET_V6ONLY : 0) |
    (socket.reuseport ? BOUND_SOCKET_REUSEPORT : 0) | (socket.file ? BOUND_SOCKET_FILE : 0);
  w.buf.writeUInt16LE(flags, at + 10);
  w.buf.writeUInt32LE(socket.backlog, at + 12);
  if (socket.file) {
    w.buf.writeUInt32LE(socket.file.mode, at + 16);
    w.buf.writeUInt32LE(u32(socket.file.uid, `fd ${f.fd} socket file uid`), at + 20);
    w.buf.writeUInt32LE(u32(socket.file.gid, `fd ${f.fd} socket file gid`), at + 24);
  }
  socket.address.copy(w.buf, at + BOUND_SOCKET_FIXED_SIZE);
}

function writeConnectedSocket(w: RecordWriter, f: ExtensionFd, socket: ConnectedSocket): void {
  const problem = connectedSocketProblem(socket);
  if (problem !== null) throw new FormatError(`fd ${f.fd}: ${problem.message}`);
  const at = w.record(RecordType.CONNECTED_SOCKET, CONNECTED_SOCKET_FIXED_SIZE + socket.local.length + socket.peer.length);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt16LE(socket.family, at + 4);
  w.buf.writeUInt16LE(socket.type, at + 6);
  w.buf.writeUInt16LE(socket.protocol, at + 8);
  w.buf.writeUInt16LE(socket.state, at + 10);
  w.buf.writeUInt16LE(socket.local.length, at + 12);
  w.buf.writeUInt16LE(socket.peer.length, at + 14);
  socket.local.copy(w.buf, at + CONNECTED_SOCKET_FIXED_SIZE);
  socket.peer.copy(w.buf, at + CONNECTED_SOCKET_FIXED_SIZE + socket.local.length);
}

/** A problem of a record's payload: the byte it is about, and what is wrong there. */
type RecordProblem = { at: number; message: string };

function writeNetlinkSocket(w: RecordWriter, f: ExtensionFd, socket: NetlinkSocket): void {
  const problem = netlinkSocketProblem(socket);
  if (problem !== null) throw new FormatError(`fd ${f.fd}: ${problem.message}`);
  const at = w.record(RecordType.NETLINK_SOCKET, NETLINK_SOCKET_FIXED_SIZE + 4 * socket.groups.length);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt32LE(socket.type, at + 4);
  w.buf.writeUInt32LE(socket.protocol, at + 8);
  w.buf.writeUInt32LE(socket.groups.length, at + 12);
  socket.groups.forEach((group, i) => w.buf.writeUInt32LE(group, at + NETLINK_SOCKET_FIXED_SIZE + 4 * i));
}

/**
 * What is wrong with a netlink socket, and the NETLINK_SOCKET payload byte it is about, or null:
 * a raw or datagram socket of a protocol below 32, its groups ascending from 1.
 */
function netlinkSocketProblem(socket: NetlinkSocket): RecordProblem | null {
  if (socket.type !== SOCK_RAW && socket.type !== SOCK_DGRAM) return { at: 4, message: `netlink socket type ${socket.type} is neither SOCK_RAW nor SOCK_DGRAM` };
  if (!Number.isInteger(socket.protocol) || socket.protocol < 0 || socket.protocol >= NETLINK_PROTOCOLS) return { at: 8, message: `netlink protocol ${socket.protocol} is not below ${NETLINK_PROTOCOLS}` };
  if (socket.groups.length > NETLINK_GROUPS_MAX) return { at: 12, message: `${socket.groups.length} groups, more than ${NETLINK_GROUPS_MAX}` };
  for (let i = 0; i < socket.groups.length; i++) {
    const group = socket.groups[i];
    if (!Number.isInteger(group) || group < 1 || group > 0xffff_ffff || (i > 0 && group <= socket.groups[i - 1])) {
      return { at: NETLINK_SOCKET_FIXED_SIZE + 4 * i, message: `group ${group} is not above ${i > 0 ? socket.groups[i - 1] : 0}` };
    }
  }
  return null;
}

function writeUnboundSocket(w: RecordWriter, f: ExtensionFd, socket: UnboundSocket): void {
  const problem = unboundSocketProblem(socket);
  if (problem !== null) throw new FormatError(`fd ${f.fd}: ${problem.message}`);
  const at = w.record(RecordType.UNBOUND_SOCKET, UNBOUND_SOCKET_SIZE);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt16LE(socket.family, at + 4);
  w.buf.writeUInt16LE(socket.type, at + 6);
  w.buf.writeUInt16LE(socket.protocol, at + 8);
  const flags = (socket.reuseaddr ? UNBOUND_SOCKET_REUSEADDR : 0) | (socket.reuseport ? UNBOUND_SOCKET_REUSEPORT : 0) | (socket.v6only ? UNBOUND_SOCKET_V6ONLY : 0);
  w.buf.writeUInt16LE(flags, at + 10);
}

/**
 * What is wrong with an unbound socket, and the UNBOUND_SOCKET payload byte it is about, or null:
 * a Unix socket of a type socketpair knows and protocol 0, or an IPv4 or IPv6 socket of any type
 * (the protocols a kernel has are for it to say at the restore); SO_REUSEPORT and IPV6_V6ONLY
 * only where they exist.
 */
function unboundSocketProblem(socket: UnboundSocket): RecordProblem | null {
  const kind = socketKindProblem(socket, 'any');
  if (kind !== null) return kind;
  if (socket.reuseport && socket.family === AF_UNIX) return { at: 10, message: 'SO_REUSEPORT on a Unix socket' };
  if (socket.v6only && socket.family !== AF_INET6) return { at: 10, message: 'IPV6_V6ONLY on a socket that is not IPv6' };
  return null;
}

/**
 * What is wrong with a socket's family, type and protocol, which every socket record holds at
 * payload bytes 4, 6 and 8, or null: a Unix stream, datagram or seqpacket socket of protocol 0, or
 * an IPv4 or IPv6 socket, of TCP or UDP with its type (inet 'tcp-udp') or of any type socket(2)
 * has (inet 'any', whose protocols are the kernel's to judge).
 */
function socketKindProblem({ family, type, protocol }: { family: number; type: number; protocol: number }, inet: 'tcp-udp' | 'any'): RecordProblem | null {
  if (family === AF_UNIX) {
    if (!SOCKET_PAIR_TYPES.has(type)) return { at: 6, message: `Unix socket type ${type} is not stream, datagram or seqpacket` };
    if (protocol !== 0) return { at: 8, message: `Unix socket protocol ${protocol} is not 0` };
    return null;
  }
  if (family !== AF_INET && family !== AF_INET6) return { at: 4, message: `address family ${family} is not AF_UNIX, AF_INET or AF_INET6` };
  if (inet === 'any') {
    return SOCKET_PAIR_TYPES.has(type) || type === SOCK_RAW ? null : { at: 6, message: `socket type ${type} is not stream, datagram, raw or seqpacket` };
  }
  const expected = protocol === IPPROTO_TCP ? SOCK_STREAM : protocol === IPPROTO_UDP ? SOCK_DGRAM : 0;
  if (expected === 0) return { at: 8, message: `protocol ${protocol} is neither TCP nor UDP` };
  if (type !== expected) return { at: 6, message: `socket type ${type} for protocol ${protocol}` };
  return null;
}

function writeFileState(w: RecordWriter, f: ExtensionFd, state: OpenFileState): void {
  if (f.kind !== 'file') throw new FormatError(`fd ${f.fd}: file state of a descriptor that is no regular file`);
  const at = w.record(RecordType.FILE_STATE, FILE_STATE_SIZE);
  const what = `fd ${f.fd}`;
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeBigUInt64LE(u64(state.dev, `${what} dev`), at + 8);
  w.buf.writeBigUInt64LE(u64(state.inode, `${what} inode`), at + 16);
  w.buf.writeBigUInt64LE(u64(state.size, `${what} size`), at + 24);
  w.buf.writeBigInt64LE(BigInt.asIntN(64, state.mtimeNs), at + 32);
}

function writeTerminal(w: RecordWriter, f: ExtensionFd, terminal: TerminalState): void {
  if (f.kind !== 'tty') throw new FormatError(`fd ${f.fd}: terminal state of a descriptor that is no tty`);
  const problem = terminalProblem(terminal);
  if (problem !== null) throw new FormatError(`fd ${f.fd}: ${problem.message}`);
  const at = w.record(RecordType.TERMINAL, TERMINAL_SIZE);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt32LE((terminal.controlling ? TERMINAL_CONTROLLING : 0) | (terminal.foreground ? TERMINAL_FOREGROUND : 0), at + 4);
  terminal.termios.copy(w.buf, at + TERMINAL_TERMIOS_AT);
  WINSIZE_FIELDS.forEach((name, i) => w.buf.writeUInt16LE(terminal[name], at + TERMINAL_WINSIZE_AT + 2 * i));
}

/**
 * What is wrong with a terminal's state, and the TERMINAL payload byte it is about, or null: a
 * struct termios of its size, a winsize of u16s, the foreground only of a controlling terminal.
 */
function terminalProblem(terminal: TerminalState): RecordProblem | null {
  if (terminal.termios.length !== TERMIOS_SIZE) return { at: TERMINAL_TERMIOS_AT, message: `a termios of ${terminal.termios.length} bytes, not ${TERMIOS_SIZE}` };
  const wide = WINSIZE_FIELDS.findIndex((name) => !Number.isInteger(terminal[name]) || terminal[name] < 0 || terminal[name] > 0xffff);
  if (wide >= 0) return { at: TERMINAL_WINSIZE_AT + 2 * wide, message: `${WINSIZE_FIELDS[wide]} ${terminal[WINSIZE_FIELDS[wide]]} does not fit in a u16` };
  if (terminal.foreground && !terminal.controlling) return { at: 4, message: 'FOREGROUND without CONTROLLING' };
  return null;
}

function writeThreadScheduling(w: RecordWriter, tid: number, s: ThreadScheduling): void {
  if (s.cpus.length < 8 || s.cpus.length > CPU_MASK_MAX || s.cpus.length % 8 !== 0) {
    throw new FormatError(`thread ${tid}: a CPU mask of ${s.cpus.length} bytes (a multiple of 8, 8..${CPU_MASK_MAX})`);
  }
  const at = w.record(RecordType.THREAD_SCHEDULING, THREAD_SCHEDULING_FIXED_SIZE + s.cpus.length);
  const b = w.buf;
  b.writeUInt32LE(tid, at);
  b.writeUInt32LE(u32(s.policy, `thread ${tid} policy`), at + 4);
  b.writeBigUInt64LE(s.flags, at + 8);
  b.writeInt32LE(s.nice, at + 16);
  b.writeUInt32LE(u32(s.priority, `thread ${tid} priority`), at + 20);
  b.writeBigUInt64LE(s.runtime, at + 24);
  b.writeBigUInt64LE(s.deadline, at + 32);
  b.writeBigUInt64LE(s.period, at + 40);
  b.writeUInt32LE(u32(s.utilMin, `thread ${tid} util_min`), at + 48);
  b.writeUInt32LE(u32(s.utilMax, `thread ${tid} util_max`), at + 52);
  b.writeUInt32LE(u32(s.ioprio, `thread ${tid} ioprio`), at + 56);
  b.writeUInt32LE(s.cpus.length, at + 60);
  b.writeBigUInt64LE(s.timerSlackNs, at + 64);
  s.cpus.copy(b, at + THREAD_SCHEDULING_FIXED_SIZE);
}

function writeInotify(w: RecordWriter, f: ExtensionFd, watches: readonly InotifyWatch[]): void {
  if (watches.length > INOTIFY_WATCHES_MAX) throw new FormatError(`fd ${f.fd}: ${watches.length} inotify watches, more than ${INOTIFY_WATCHES_MAX}`);
  const paths = watches.map((watch) => Buffer.from(watch.path ?? '', 'utf8'));
  const at = w.record(RecordType.INOTIFY, INOTIFY_FIXED_SIZE + paths.reduce((sum, p) => sum + INOTIFY_WATCH_FIXED_SIZE + align8(p.length), 0));
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt32LE(watches.length, at + 4);
  let pos = at + INOTIFY_FIXED_SIZE;
  watches.forEach((watch, i) => {
    if (i > 0 && watch.wd <= watches[i - 1].wd) throw new FormatError(`fd ${f.fd}: inotify watch ${watch.wd} is not above ${watches[i - 1].wd}`);
    w.buf.writeInt32LE(watch.wd, pos);
    w.buf.writeUInt32LE(u32(watch.mask, `fd ${f.fd} inotify watch ${watch.wd} mask`), pos + 4);
    w.buf.writeBigUInt64LE(watch.inode, pos + 8);
    w.buf.writeUInt32LE(paths[i].length, pos + 16);
    paths[i].copy(w.buf, pos + INOTIFY_WATCH_FIXED_SIZE);
    pos += INOTIFY_WATCH_FIXED_SIZE + align8(paths[i].length);
  });
}

/** A FILE_CONTENT record; the bytes of a dump's file are read when a reader first reaches them. */
function writeFileContent(w: RecordWriter, f: ExtensionFd, content: FileContent): void {
  const { length } = content.bytes;
  if (length > FILE_CONTENT_MAX) throw new FormatError(`fd ${f.fd}: ${length} bytes of file content, more than ${FILE_CONTENT_MAX}`);
  const head = Buffer.alloc(FILE_CONTENT_FIXED_SIZE);
  head.writeUInt32LE(f.fd, 0);
  head.writeUInt32LE(content.memfd ? FILE_CONTENT_MEMFD : 0, 4);
  head.writeUInt32LE(u32(content.seals, `fd ${f.fd} seals`), 8);
  head.writeUInt32LE(u32(content.mode, `fd ${f.fd} mode`), 12);
  head.writeBigUInt64LE(BigInt(length), 16);
  writeHeadAndBytes(w, RecordType.FILE_CONTENT, head, content.bytes);
}

/**
 * A record of a fixed head and a file's bytes, which (when not in memory) are read only once the
 * image's reader reaches the record.
 */
function writeHeadAndBytes(w: RecordWriter, type: number, head: Buffer, bytes: Buffer | { length: number; read(): Buffer }): void {
  if (Buffer.isBuffer(bytes)) {
    const at = w.record(type, head.length + bytes.length);
    head.copy(w.buf, at);
    bytes.copy(w.buf, at + head.length);
    return;
  }
  w.deferredRecord(type, { length: head.length + bytes.length, produce: () => Buffer.concat([head, bytes.read()]) });
}

const socketDataSize = (lengths: readonly number[]): number =>
  SOCKET_DATA_FIXED_SIZE + lengths.reduce((sum, n) => sum + SOCKET_MESSAGE_FIXED_SIZE + align8(n), 0);

function writeSocketData(w: RecordWriter, f: ExtensionFd, messages: readonly Buffer[]): void {
  if (!f.unixPeer) throw new FormatError(`fd ${f.fd}: queued messages of a socket that is no end of a socket pair`);
  const total = messages.reduce((sum, m) => sum + m.length, 0);
  if (messages.length === 0 || total > SOCKET_DATA_MAX) throw new FormatError(`fd ${f.fd}: ${messages.length} queued messages of ${total} bytes (1 message or more, ${SOCKET_DATA_MAX} bytes at most)`);
  const at = w.record(RecordType.SOCKET_DATA, socketDataSize(messages.map((m) => m.length)));
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt32LE(messages.length, at + 4);
  let pos = at + SOCKET_DATA_FIXED_SIZE;
  for (const message of messages) {
    w.buf.writeUInt32LE(message.length, pos);
    message.copy(w.buf, pos + SOCKET_MESSAGE_FIXED_SIZE);
    pos += SOCKET_MESSAGE_FIXED_SIZE + align8(message.length);
  }
}

function writeProcessSettings(w: RecordWriter, settings: ProcessSettings): void {
  if (!Number.isInteger(settings.oomScoreAdj) || Math.abs(settings.oomScoreAdj) > 1000) throw new FormatError(`oom_score_adj ${settings.oomScoreAdj} is not in -1000..1000`);
  const at = w.record(RecordType.PROCESS_SETTINGS, PROCESS_SETTINGS_SIZE);
  w.buf.writeInt32LE(settings.oomScoreAdj, at);
  w.buf.writeUInt32LE(u32(settings.personality, 'personality'), at + 4);
}

/** Whether a restore sets an fd's socket options: on a socket it makes of its kind, not one that comes back closed. */
function takesOptions(fd: ExtensionFd): boolean {
  return fd.boundSocket !== undefined || fd.unboundSocket !== undefined || fd.connectedSocket?.type === SOCK_DGRAM;
}

function writeSocketOptions(w: RecordWriter, f: ExtensionFd, options: readonly SocketOption[]): void {
  if (!takesOptions(f)) throw new FormatError(`fd ${f.fd}: socket options of a socket neither bound, unbound nor a connected datagram socket`);
  if (options.length === 0 || options.length > SOCKET_OPTIONS_MAX) throw new FormatError(`fd ${f.fd}: ${options.length} socket options (1..${SOCKET_OPTIONS_MAX})`);
  const at = w.record(RecordType.SOCKET_OPTIONS, SOCKET_OPTIONS_FIXED_SIZE + options.length * SOCKET_OPTION_SIZE);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt32LE(options.length, at + 4);
  options.forEach(({ level, name, value }, i) => {
    if (value.length < 1 || value.length > SOCKET_OPTION_VALUE_MAX) {
      throw new FormatError(`fd ${f.fd}: ${socketOptionLabel(level, name)} has a value of ${value.length} bytes (1..${SOCKET_OPTION_VALUE_MAX})`);
    }
    const entry = at + SOCKET_OPTIONS_FIXED_SIZE + i * SOCKET_OPTION_SIZE;
    w.buf.writeUInt32LE(u32(level, `fd ${f.fd} socket option level`), entry);
    w.buf.writeUInt32LE(u32(name, `fd ${f.fd} socket option name`), entry + 4);
    w.buf.writeUInt32LE(value.length, entry + 8);
    value.copy(w.buf, entry + 16);
  });
}

/**
 * What is wrong with a bound socket, and the BOUND_SOCKET payload byte it is about, or null. The
 * kinds a restore makes: TCP listeners and bound UDP sockets over IPv4 or IPv6, Unix stream and
 * seqpacket listeners and bound Unix datagram sockets.
 */
function boundSocketProblem(socket: BoundSocket): RecordProblem | null {
  const { family, type, listening, address } = socket;
  const addressAt = BOUND_SOCKET_FIXED_SIZE;
  if (address.length < 2 || address.readUInt16LE(0) !== family) return { at: addressAt, message: `the address is no sockaddr of family ${family}` };
  const kind = socketKindProblem(socket, 'tcp-udp');
  if (kind !== null) return kind;
  if (family === AF_UNIX) {
    if (address.length < 3 || address.length > SOCKADDR_UN_MAX) return { at: addressAt, message: `a Unix address of ${address.length} bytes (3..${SOCKADDR_UN_MAX})` };
  } else {
    const size = family === AF_INET ? 16 : 28;
    if (address.length !== size) return { at: addressAt, message: `an address of family ${family} has ${size} bytes, not ${address.length}` };
  }
  if (listening === (type === SOCK_DGRAM)) return { at: 10, message: listening ? 'a datagram socket does not listen' : 'a stream socket that does not listen' };
  if (!listening && socket.backlog !== 0) return { at: 12, message: `backlog ${socket.backlog} of a socket that does not listen` };
  if (socket.v6only && family !== AF_INET6) return { at: 10, message: 'IPV6_V6ONLY on a socket that is not IPv6' };
  if (socket.reuseport && family === AF_UNIX) return { at: 10, message: 'SO_REUSEPORT on a Unix socket' };
  if (socket.file && (family !== AF_UNIX || address[2] === 0)) return { at: 10, message: 'a socket file for a socket not bound to a path' };
  if (socket.file && (socket.file.mode & ~0o7777) !== 0) return { at: 16, message: `socket file mode ${socket.file.mode.toString(8)} is not permission bits` };
  return null;
}

/**
 * What is wrong with a connected socket, and the CONNECTED_SOCKET payload byte it is about, or
 * null: TCP or UDP over IPv4 or IPv6 with both addresses of its family, or a Unix stream,
 * datagram or seqpacket socket whose addresses are each a sockaddr_un or empty (unnamed).
 */
function connectedSocketProblem(socket: ConnectedSocket): RecordProblem | null {
  const { family, local, peer } = socket;
  const addresses = [{ name: 'local', address: local, at: CONNECTED_SOCKET_FIXED_SIZE }, { name: 'peer', address: peer, at: CONNECTED_SOCKET_FIXED_SIZE + local.length }];
  const kind = socketKindProblem(socket, 'tcp-udp');
  if (kind !== null) return kind;
  if (family === AF_UNIX) {
    for (const { name, address, at } of addresses) {
      if (address.length === 0) continue;
      if (address.length < 3 || address.length > SOCKADDR_UN_MAX || address.readUInt16LE(0) !== AF_UNIX) {
        return { at, message: `the ${name} address is neither empty nor a Unix address of 3..${SOCKADDR_UN_MAX} bytes` };
      }
    }
  } else {
    const size = family === AF_INET ? 16 : 28;
    for (const { name, address, at } of addresses) {
      if (address.length !== size || address.readUInt16LE(0) !== family) return { at, message: `the ${name} address is no ${size}-byte sockaddr of family ${family}` };
    }
  }
  if (socket.state < TCP_ESTABLISHED || socket.state > TCP_CLOSING || socket.state === TCP_LISTEN) {
    return { at: 10, message: `state ${socket.state} is no connection's (1..11, but 10, TCP_LISTEN)` };
  }
  return null;
}

function writeFileLocks(w: RecordWriter, f: ExtensionFd, locks: readonly FileLock[]): void {
  const at = w.record(RecordType.FILE_LOCKS, FILE_LOCKS_FIXED_SIZE + locks.length * FILE_LOCK_SIZE);
  w.buf.writeUInt32LE(f.fd, at);
  w.buf.writeUInt32LE(locks.length, at + 4);
  locks.forEach((lock, i) => {
    const pos = at + FILE_LOCKS_FIXED_SIZE + i * FILE_LOCK_SIZE;
    const kind = FILE_LOCK_KINDS.indexOf(lock.kind) + 1;
    if (kind === 0) throw new FormatError(`fd ${f.fd}: unknown lock kind '${lock.kind}'`);
    if (lock.end !== null && lock.end < lock.start) throw new FormatError(`fd ${f.fd}: lock ${i} ends (${lock.end}) before it starts (${lock.start})`);
    w.buf.writeUInt32LE(kind, pos);
    w.buf.writeUInt32LE(lock.write ? FILE_LOCK_WRITE : FILE_LOCK_READ, pos + 4);
    w.buf.writeBigUInt64LE(u64(lock.start, `fd ${f.fd} lock ${i} start`), pos + 8);
    w.buf.writeBigUInt64LE(lock.end === null ? FILE_LOCK_TO_EOF : u64(lock.end, `fd ${f.fd} lock ${i} end`), pos + 16);
  });
}

function writeMappedContent(w: RecordWriter, content: MappedContent): void {
  const { length } = content.bytes;
  const what = `mapped file ${content.dev}:${content.inode}`;
  if (length > MAPPED_CONTENT_MAX) throw new FormatError(`${what}: ${length} bytes, more than ${MAPPED_CONTENT_MAX}`);
  const head = Buffer.alloc(MAPPED_CONTENT_FIXED_SIZE);
  head.writeBigUInt64LE(u64(content.dev, `${what} dev`), 0);
  head.writeBigUInt64LE(u64(content.inode, `${what} inode`), 8);
  head.writeUInt32LE(u32(content.mode, `${what} mode`), 16);
  head.writeBigUInt64LE(BigInt(length), 24);
  writeHeadAndBytes(w, RecordType.MAPPED_CONTENT, head, content.bytes);
}

function writeGuardPages(w: RecordWriter, runs: readonly [number, number][]): void {
  const at = w.record(RecordType.GUARD_PAGES, runs.length * GUARD_PAGES_ENTRY_SIZE);
  let previousEnd = 0;
  runs.forEach(([start, end], i) => {
    const problem = guardRunProblem(start, end, previousEnd);
    if (problem) throw new FormatError(`guard page run ${i}: ${problem}`);
    w.buf.writeBigUInt64LE(BigInt(start), at + i * GUARD_PAGES_ENTRY_SIZE);
    w.buf.writeBigUInt64LE(BigInt(end), at + i * GUARD_PAGES_ENTRY_SIZE + 8);
    previousEnd = end;
  });
}

/** What is wrong with a run of guard pages after one that ended at previousEnd; null: nothing. */
function guardRunProblem(start: number, end: number, previousEnd: number): string | null {
  if (start % PAGE_SIZE !== 0 || end % PAGE_SIZE !== 0) return `${hex(start)}-${hex(end)} is not page-aligned`;
  if (start >= end) return `${hex(start)}-${hex(end)} is empty`;
  if (start < previousEnd) return `${hex(start)}-${hex(end)} is not above the run before it (ending at ${hex(previousEnd)})`;
  return null;
}

function writeChildren(w: RecordWriter, children: readonly number[]): void {
  const at = w.record(RecordType.CHILDREN, CHILDREN_FIXED_SIZE + 4 * children.length);
  w.buf.writeUInt32LE(children.length, at);
  children.forEach((pid, i) => {
    if (!Number.isInteger(pid) || pid < 1 || pid > PID_MAX) throw new FormatError(`child ${i}: ${pid} is not a pid`);
    w.buf.writeUInt32LE(pid, at + CHILDREN_FIXED_SIZE + 4 * i);
  });
}

/** What is wrong with a pipe's capacity and byte count, or null. */
function pipeDataProblem(capacity: number, bytes: number): string | null {
  if (!Number.isInteger(capacity) || capacity < PAGE_SIZE || capacity > PIPE_CAPACITY_MAX || capacity % PAGE_SIZE !== 0) {
    return `pipe capacity ${capacity} is not a multiple of ${PAGE_SIZE} in ${PAGE_SIZE}..${PIPE_CAPACITY_MAX}`;
  }
  return bytes > capacity ? `pipe holds ${bytes} bytes, more than its capacity ${capacity}` : null;
}

/** Consecutive timespecs as u64 seconds and u64 nanoseconds (below 10^9). */
function writeTimeSpecs(buf: Buffer, at: number, times: readonly TimeSpec[], what: string): void {
  times.forEach(({ sec, nsec }, j) => {
    if (!Number.isInteger(nsec) || nsec < 0 || nsec >= NSEC_PER_SEC) throw new FormatError(`${what}: nanoseconds ${nsec} not below ${NSEC_PER_SEC}`);
    buf.writeBigUInt64LE(u64(sec, `${what} seconds`), at + j * 16);
    buf.writeBigUInt64LE(BigInt(nsec), at + 8 + j * 16);
  });
}

const isFdNumber = (fd: number): boolean => Number.isInteger(fd) && fd >= 0 && fd <= 0x7fff_ffff;

/** A thread's exit futexes; an absent one is written as 0, which a restore treats as none. */
function writeThreadFutex(w: RecordWriter, t: ExtensionThread): void {
  const at = w.record(RecordType.THREAD_FUTEX, THREAD_FUTEX_SIZE);
  w.buf.writeUInt32LE(t.tid, at);
  w.buf.writeBigUInt64LE(u64(t.clearChildTid ?? 0, `thread ${t.tid} clear_child_tid`), at + 8);
  w.buf.writeBigUInt64LE(u64(t.robustList?.head ?? 0, `thread ${t.tid} robust list head`), at + 16);
  w.buf.writeBigUInt64LE(u64(t.robustList?.len ?? 0, `thread ${t.tid} robust list length`), at + 24);
}

/** A thread's rseq registration; address 0 when it had none. */
function writeThreadRseq(w: RecordWriter, t: ExtensionThread & { rseq: RseqArea }): void {
  const at = w.record(RecordType.THREAD_RSEQ, THREAD_RSEQ_SIZE);
  w.buf.writeUInt32LE(t.tid, at);
  w.buf.writeUInt32LE(u32(t.rseq.length, `thread ${t.tid} rseq length`), at + 4);
  w.buf.writeBigUInt64LE(u64(t.rseq.address, `thread ${t.tid} rseq address`), at + 8);
  w.buf.writeUInt32LE(u32(t.rseq.signature, `thread ${t.tid} rseq signature`), at + 16);
}

function writeThreadSigaltstack(w: RecordWriter, t: ExtensionThread & { sigaltstack: SignalStack }): void {
  const at = w.record(RecordType.THREAD_SIGALTSTACK, THREAD_SIGALTSTACK_SIZE);
  w.buf.writeUInt32LE(t.tid, at);
  w.buf.writeUInt32LE(u32(t.sigaltstack.flags, `thread ${t.tid} sigaltstack flags`), at + 4);
  w.buf.writeBigUInt64LE(u64(t.sigaltstack.sp, `thread ${t.tid} sigaltstack sp`), at + 8);
  w.buf.writeBigUInt64LE(u64(t.sigaltstack.size, `thread ${t.tid} sigaltstack size`), at + 16);
}

function writeThreadIdentity(w: RecordWriter, tid: number, identity: ThreadIdentity): void {
  const { name, uids, gids, groups, caps } = identity;
  if (name.length < 1 || name.length > THREAD_NAME_MAX) throw new FormatError(`thread ${tid}: a name of ${name.length} bytes (1..${THREAD_NAME_MAX})`);
  if (groups.length > GROUPS_MAX) throw new FormatError(`thread ${tid}: ${groups.length} groups, more than ${GROUPS_MAX}`);
  const at = w.record(RecordType.THREAD_IDENTITY, THREAD_IDENTITY_FIXED_SIZE + 4 * groups.length);
  w.buf.writeUInt32LE(tid, at);
  w.buf.writeUInt32LE(name.length, at + 4);
  name.copy(w.buf, at + 8);
  [...uids, ...gids].forEach((id, i) => w.buf.writeUInt32LE(u32(id, `thread ${tid} id ${i}`), at + 24 + 4 * i));
  [caps.inheritable, caps.permitted, caps.effective, caps.bounding, caps.ambient].forEach((set, i) => {
    w.buf.writeBigUInt64LE(u64(set, `thread ${tid} capability set ${i}`), at + 56 + 8 * i);
  });
  w.buf.writeUInt32LE(u32(identity.securebits, `thread ${tid} securebits`), at + 96);
  w.buf.writeUInt32LE(identity.noNewPrivs ? 1 : 0, at + 100);
  w.buf.writeUInt32LE(groups.length, at + 104);
  groups.forEach((group, i) => w.buf.writeUInt32LE(u32(group, `thread ${tid} group ${i}`), at + THREAD_IDENTITY_FIXED_SIZE + 4 * i));
}

function writeSeccompFilter(w: RecordWriter, index: number, filter: SeccompFilter): void {
  const count = filter.program.length / BPF_INSTRUCTION_SIZE;
  if (!Number.isInteger(count) || count < 1 || count > BPF_MAX_INSTRUCTIONS) {
    throw new FormatError(`seccomp filter ${index}: a program of ${filter.program.length} bytes (1..${BPF_MAX_INSTRUCTIONS} instructions of ${BPF_INSTRUCTION_SIZE})`);
  }
  const at = w.record(RecordType.SECCOMP_FILTER, SECCOMP_FILTER_FIXED_SIZE + filter.program.length);
  w.buf.writeUInt32LE(index, at);
  w.buf.writeUInt32LE(filter.log ? SECCOMP_FILTER_LOG : 0, at + 4);
  w.buf.writeUInt32LE(count, at + 8);
  filter.program.copy(w.buf, at + SECCOMP_FILTER_FIXED_SIZE);
}

function writeThreadSeccomp(w: RecordWriter, tid: number, seccomp: ThreadSeccomp, filterCount: number): void {
  const filters = seccomp.mode === 'filter' ? seccomp.filters : [];
  if (seccomp.mode === 'filter' && (filters.length === 0 || filters.some((i) => !Number.isInteger(i) || i < 0 || i >= filterCount))) {
    throw new FormatError(`thread ${tid}: seccomp filters ${filters.join(', ') || 'none'} are not among the ${filterCount} recorded`);
  }
  const at = w.record(RecordType.THREAD_SECCOMP, THREAD_SECCOMP_FIXED_SIZE + 4 * filters.length);
  w.buf.writeUInt32LE(tid, at);
  w.buf.writeUInt32LE(seccomp.mode === 'strict' ? SECCOMP_MODE_STRICT : SECCOMP_MODE_FILTER, at + 4);
  w.buf.writeUInt32LE(filters.length, at + 8);
  filters.forEach((index, i) => w.buf.writeUInt32LE(index, at + THREAD_SECCOMP_FIXED_SIZE + 4 * i));
}

/** One queue of pending signals: a thread's (tid), or the process's shared one (tid 0). */
function writePendingSignals(w: RecordWriter, tid: number, signals: readonly Buffer[]): void {
  const what = tid === 0 ? 'the shared queue' : `thread ${tid}'s queue`;
  const at = w.record(RecordType.PENDING_SIGNALS, PENDING_SIGNALS_FIXED_SIZE + signals.length * SIGINFO_SIZE);
  w.buf.writeUInt32LE(tid, at);
  w.buf.writeUInt32LE(signals.length, at + 4);
  signals.forEach((info, i) => {
    if (info.length !== SIGINFO_SIZE) throw new FormatError(`a siginfo of ${info.length} bytes in ${what}, not ${SIGINFO_SIZE}`);
    const signal = info.readInt32LE(0);
    if (signal < 1 || signal > SIGNAL_COUNT) throw new FormatError(`a siginfo of signal ${signal} in ${what}`);
    info.copy(w.buf, at + PENDING_SIGNALS_FIXED_SIZE + i * SIGINFO_SIZE);
  });
}

/** Whole when the flags are at hand; deferred (its entries encoded when first read) when they are not yet. */
function writeVmaFlags(w: RecordWriter, vmaFlags: NonNullable<ImageExtension['vmaFlags']>): void {
  if (Array.isArray(vmaFlags)) {
    encodeVmaFlags(vmaFlags).copy(w.buf, w.record(RecordType.VMA_FLAGS, vmaFlags.length * VMA_FLAGS_ENTRY_SIZE));
    return;
  }
  w.deferredRecord(RecordType.VMA_FLAGS, {
    length: vmaFlags.count * VMA_FLAGS_ENTRY_SIZE,
    produce: () => encodeVmaFlags(vmaFlags.read()),
  });
}

function encodeVmaFlags(entries: readonly VmaFlags[]): Buffer {
  const buf = Buffer.alloc(entries.length * VMA_FLAGS_ENTRY_SIZE);
  entries.forEach(({ start, flags }, i) => {
    if ((flags & ~VMA_FLAGS_KNOWN) !== 0) throw new FormatError(`VMA 0x${start.toString(16)}: unknown VMA flags 0x${flags.toString(16)}`);
    buf.writeBigUInt64LE(u64(start, 'VMA start'), i * VMA_FLAGS_ENTRY_SIZE);
    buf.writeUInt32LE(flags, i * VMA_FLAGS_ENTRY_SIZE + 8);
  });
  return buf;
}

function writeUmask(w: RecordWriter, umask: number): void {
  if (!Number.isInteger(umask) || umask < 0 || umask > 0o777) throw new FormatError(`umask ${umask} is not a file mode mask`);
  w.buf.writeUInt32LE(umask, w.record(RecordType.UMASK, UMASK_SIZE));
}

function writeRlimits(w: RecordWriter, limits: readonly ResourceLimit[]): void {
  if (limits.length > RLIMITS_MAX) throw new FormatError(`${limits.length} resource limits, at most ${RLIMITS_MAX}`);
  const at = w.record(RecordType.RLIMITS, RLIMITS_FIXED_SIZE + limits.length * RLIMIT_SIZE);
  w.buf.writeUInt32LE(limits.length, at);
  limits.forEach(({ soft, hard }, resource) => {
    if (soft > hard) throw new FormatError(`resource ${resource}: soft limit ${soft} above the hard limit ${hard}`);
    const pos = at + RLIMITS_FIXED_SIZE + resource * RLIMIT_SIZE;
    w.buf.writeBigUInt64LE(u64(soft, `resource ${resource} soft limit`), pos);
    w.buf.writeBigUInt64LE(u64(hard, `resource ${resource} hard limit`), pos + 8);
  });
}

function writeItimers(w: RecordWriter, timers: readonly IntervalTimer[]): void {
  if (timers.length !== ITIMER_COUNT) throw new FormatError(`${timers.length} interval timers, expected ${ITIMER_COUNT}`);
  const at = w.record(RecordType.ITIMERS, ITIMERS_SIZE);
  timers.forEach((timer, i) => [timer.interval, timer.value].forEach(({ sec, usec }, j) => {
    const what = `interval timer ${i} ${j === 0 ? 'interval' : 'value'}`;
    if (!Number.isInteger(usec) || usec < 0 || usec >= 1_000_000) throw new FormatError(`${what}: ${usec} microseconds`);
    const pos = at + i * ITIMERVAL_SIZE + j * 16;
    w.buf.writeBigUInt64LE(u64(sec, `${what} seconds`), pos);
    w.buf.writeBigUInt64LE(BigInt(usec), pos + 8);
  }));
}

/**
 * The POSIX timers, by ascending id. Checked as a reader checks them (posixTimerProblem), so
 * that what decodes encodes again.
 */
function writePosixTimers(w: RecordWriter, timers: readonly PosixTimer[], tids: ReadonlySet<number>): void {
  const at = w.record(RecordType.POSIX_TIMERS, POSIX_TIMERS_FIXED_SIZE + timers.length * POSIX_TIMER_SIZE);
  w.buf.writeUInt32LE(timers.length, at);
  timers.forEach((timer, i) => {
    const problem = posixTimerProblem(timer, i === 0 ? -1 : timers[i - 1].id, tids);
    if (problem !== null) throw new FormatError(`POSIX timer ${timer.id}: ${problem}`);
    const pos = at + POSIX_TIMERS_FIXED_SIZE + i * POSIX_TIMER_SIZE;
    w.buf.writeInt32LE(timer.id, pos);
    w.buf.writeInt32LE(timer.clock, pos + 4);
    w.buf.writeUInt32LE(timer.notify, pos + 8);
    w.buf.writeInt32LE(timer.signal, pos + 12);
    w.buf.writeBigUInt64LE(u64(timer.sigevValue, `POSIX timer ${timer.id} sigev_value`), pos + 16);
    w.buf.writeUInt32LE(timer.tid, pos + 24);
    writeTimeSpecs(w.buf, pos + 32, [timer.interval, timer.value], `POSIX timer ${timer.id}`);
  });
}

const isInt32 = (n: number): boolean => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31;

/**
 * What is wrong with a timer, or null: ids ascend from 0 to INT_MAX, the notification is one the
 * kernel accepts, with a signal 1..64 unless it is SIGEV_NONE, and a tid (one of tids, unless
 * null) for SIGEV_THREAD_ID only; nanoseconds below 10^9. Seconds are left to the u64 checks.
 */
function posixTimerProblem(timer: PosixTimer, previousId: number, tids: ReadonlySet<number> | null): string | null {
  const { id, clock, notify, signal, tid } = timer;
  if (!isInt32(id) || id < 0) return `id ${id} is not a timer id`;
  if (id <= previousId) return `id ${id} is not above the previous timer's ${previousId}`;
  if (!isInt32(clock)) return `clock ${clock} is not a clock id`;
  if (!SIGEV_NOTIFY_VALUES.includes(notify)) return `sigev_notify ${notify} is not one the kernel accepts`;
  if (!isInt32(signal) || (notify !== SIGEV_NONE && (signal < 1 || signal > SIGNAL_COUNT))) return `signal ${signal} is not a signal`;
  if ((notify === SIGEV_THREAD_ID) !== (tid !== 0)) return `tid ${tid} with sigev_notify ${notify}`;
  if (tid !== 0 && tids !== null && !tids.has(tid)) return `thread ${tid} has no THREAD record`;
  const badNsec = [timer.interval, timer.value].find(({ nsec }) => !Number.isInteger(nsec) || nsec < 0 || nsec >= NSEC_PER_SEC);
  if (badNsec) return `nanoseconds ${badNsec.nsec} not below ${NSEC_PER_SEC}`;
  return null;
}

/**
 * The shared memory's SHARED_PAGES records: one per VMA, or more for a VMA with more than
 * SHARED_PAGES_PER_RECORD pages (they follow one another, pages ascending across them).
 */
function writeSharedMemory(w: RecordWriter, memory: readonly SharedMemoryContents[]): void {
  let previousEnd = 0;
  for (const { start, end, pages } of memory) {
    const what = `shared memory ${hex(start)}-${hex(end)}`;
    if (start % PAGE_SIZE !== 0 || end % PAGE_SIZE !== 0 || end <= start || start < previousEnd) {
      throw new FormatError(`${what}: not a page-aligned range above the previous one`);
    }
    if (pages.runCount > 0 && (pages.starts[0] < start || pages.runEnd(pages.runCount - 1) > end)) {
      throw new FormatError(`${what}: carries pages outside it`);
    }
    previousEnd = end;
    for (let first = 0; first === 0 || first < pages.totalPages; first += SHARED_PAGES_PER_RECORD) {
      const last = Math.min(first + SHARED_PAGES_PER_RECORD, pages.totalPages);
      const part = pages.totalPages <= SHARED_PAGES_PER_RECORD ? pages : pages.restrict([[
        pages.pageAddress(first), last === pages.totalPages ? end : pages.pageAddress(last)]]);
      const at = w.recordWithPages(RecordType.SHARED_PAGES, SHARED_PAGES_FIXED_SIZE, part);
      w.buf.writeBigUInt64LE(u64(start, `${what} start`), at);
      w.buf.writeBigUInt64LE(u64(end, `${what} end`), at + 8);
      w.buf.writeUInt32LE(part.totalPages, at + 16);
    }
  }
}

/** The extension as bytes and page indexes, which a layout lays out without reading a page. */
export function extensionPieces(ext: ImageExtension): ExtensionPiece[] {
  const shape = shapeOf(ext);
  const size = extensionSize(shape);
  const w = new RecordWriter(Buffer.alloc(extensionBytesSize(shape)));
  w.buf.writeUInt32LE(EXTENSION_MAGIC, 0);
  w.buf.writeUInt32LE(EXTENSION_VERSION, 4);
  w.buf.writeBigUInt64LE(BigInt(size), 8);
  w.text(RecordType.EXE, ext.exe);
  w.text(RecordType.CWD, ext.cwd);
  w.buf.writeBigUInt64LE(u64(ext.brk, 'brk'), w.record(RecordType.BRK, 8));
  ext.auxv.copy(w.buf, w.record(RecordType.AUXV, ext.auxv.length));
  for (const thread of ext.threads) writeThread(w, thread);
  for (const file of ext.files) writeMappedFile(w, file);
  writeSigactions(w, ext.sigactions);
  for (const fd of ext.fds) writeFd(w, fd);
  for (const thread of ext.threads.filter(hasFutexRecord)) writeThreadFutex(w, thread);
  for (const thread of ext.threads) if (thread.rseq) writeThreadRseq(w, { ...thread, rseq: thread.rseq });
  for (const thread of ext.threads) if (thread.sigaltstack) writeThreadSigaltstack(w, { ...thread, sigaltstack: thread.sigaltstack });
  if (ext.sharedPendingSignals) writePendingSignals(w, 0, ext.sharedPendingSignals);
  for (const thread of ext.threads) if (thread.pendingSignals) writePendingSignals(w, thread.tid, thread.pendingSignals);
  if (ext.umask !== undefined) writeUmask(w, ext.umask);
  if (ext.rlimits) writeRlimits(w, ext.rlimits);
  if (ext.itimers) writeItimers(w, ext.itimers);
  if (ext.sharedMemory) writeSharedMemory(w, ext.sharedMemory);
  if (ext.posixTimers) writePosixTimers(w, ext.posixTimers, new Set(ext.threads.map((t) => t.tid)));
  for (const fd of ext.fds) if (fd.eventfd) writeEventFd(w, fd, fd.eventfd);
  for (const fd of ext.fds) if (fd.epoll) writeEpoll(w, fd, fd.epoll);
  for (const fd of ext.fds) if (fd.timerfd) writeTimerFd(w, fd, fd.timerfd);
  for (const fd of ext.fds) if (fd.signalfd) writeSignalFd(w, fd, fd.signalfd);
  if (ext.vmaFlags) writeVmaFlags(w, ext.vmaFlags);
  if (ext.stopped) w.record(RecordType.STOPPED, 0);
  for (const fd of ext.fds) if (fd.pipeData) writePipeData(w, fd, fd.pipeData);
  for (const fd of ext.fds) if (fd.unixPeer) writeUnixPeer(w, fd, fd.unixPeer);
  for (const fd of ext.fds) if (fd.locks) writeFileLocks(w, fd, fd.locks);
  if (ext.children) writeChildren(w, ext.children);
  for (const fd of ext.fds) if (fd.boundSocket) writeBoundSocket(w, fd, fd.boundSocket);
  for (const thread of ext.threads) if (thread.identity) writeThreadIdentity(w, thread.tid, thread.identity);
  const filters = ext.seccompFilters ?? [];
  filters.forEach((filter, index) => writeSeccompFilter(w, index, filter));
  for (const thread of ext.threads) if (thread.seccomp) writeThreadSeccomp(w, thread.tid, thread.seccomp, filters.length);
  for (const fd of ext.fds) if (fd.socketOptions) writeSocketOptions(w, fd, fd.socketOptions);
  for (const thread of ext.threads) if (thread.scheduling) writeThreadScheduling(w, thread.tid, thread.scheduling);
  if (ext.settings) writeProcessSettings(w, ext.settings);
  for (const fd of ext.fds) if (fd.inotify) writeInotify(w, fd, fd.inotify);
  if (ext.clocks) writeTimeSpecs(w.buf, w.record(RecordType.CLOCKS, CLOCKS_SIZE), [ext.clocks.monotonic, ext.clocks.boottime], 'clock');
  for (const fd of ext.fds) if (fd.content) writeFileContent(w, fd, fd.content);
  for (const fd of ext.fds) if (fd.queued) writeSocketData(w, fd, fd.queued);
  for (const fd of ext.fds) if (fd.sharesWith !== undefined) writeSharedFd(w, fd, fd.sharesWith);
  for (const fd of ext.fds) if (fd.connectedSocket) writeConnectedSocket(w, fd, fd.connectedSocket);
  for (const fd of ext.fds) if (fd.netlink) writeNetlinkSocket(w, fd, fd.netlink);
  for (const fd of ext.fds) if (fd.unboundSocket) writeUnboundSocket(w, fd, fd.unboundSocket);
  for (const fd of ext.fds) if (fd.terminal) writeTerminal(w, fd, fd.terminal);
  for (const fd of ext.fds) if (fd.fileState) writeFileState(w, fd, fd.fileState);
  if (ext.guardPages) writeGuardPages(w, ext.guardPages);
  for (const content of ext.mappedContents ?? []) writeMappedContent(w, content);
  for (const fd of ext.fds) if (fd.userfaultfd) writeUserfaultfd(w, fd, fd.userfaultfd);
  w.record(RecordType.END, 0);
  if (w.size !== w.buf.length) throw new Error(`extension encoder wrote ${w.size} bytes, its size is ${w.buf.length}`);
  return w.finish();
}

/**
 * The whole extension in one buffer, for images made in memory (tests, tools): each carried page's
 * bytes are pageData(its address) (zeros by default).
 */
export function encodeExtension(ext: ImageExtension, pageData: (vaddr: number) => Buffer = () => ZERO_PAGE): Buffer {
  return Buffer.concat(extensionPieces(ext).map((piece) =>
    (piece instanceof PageIndex ? pageRecords(piece, pageData) : Buffer.isBuffer(piece) ? piece : producedBytes(piece))));
}

/** A deferred piece's bytes, checked to be as many as it promised. */
export function producedBytes(piece: DeferredBytes): Buffer {
  const bytes = piece.produce();
  if (bytes.length !== piece.length) throw new Error(`deferred extension bytes: ${bytes.length} made, ${piece.length} promised`);
  return bytes;
}

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

function pageRecords(pages: PageIndex, pageData: (vaddr: number) => Buffer): Buffer {
  const out = Buffer.alloc(pages.totalPages * PAGE_RECORD_SIZE);
  for (let k = 0; k < pages.totalPages; k++) {
    const vaddr = pages.pageAddress(k);
    out.writeBigUInt64LE(BigInt(vaddr), k * PAGE_RECORD_SIZE);
    pageData(vaddr).copy(out, k * PAGE_RECORD_SIZE + 8, 0, PAGE_SIZE);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

export interface ExtensionHeader {
  version: number;
  /** Bytes of the whole extension, header included. */
  length: number;
}

/**
 * Checks the 16-byte header at buf[0..16) (image offset `base`): how many bytes the extension
 * takes, for a reader that streams the image and must know how much to collect.
 */
export function decodeExtensionHeader(buf: Buffer, base = 0): ExtensionHeader {
  if (buf.length < EXTENSION_HEADER_SIZE) {
    throw new ExtensionFormatError(base, `image ends inside the extension header (expected ${EXTENSION_HEADER_SIZE} bytes, got ${buf.length})`);
  }
  const magic = buf.readUInt32LE(0);
  if (magic !== EXTENSION_MAGIC) throw new ExtensionFormatError(base, `bad extension magic ${hex(magic)}, expected ${hex(EXTENSION_MAGIC)}`);
  const version = buf.readUInt32LE(4);
  if (version !== EXTENSION_VERSION) {
    throw new ExtensionFormatError(base + 4, `unsupported extension version ${version}, expected ${EXTENSION_VERSION}`);
  }
  const length = buf.readBigUInt64LE(8);
  const minimum = EXTENSION_HEADER_SIZE + RECORD_HEADER_SIZE;
  // Shared pages may make it longer than EXTENSION_MAX_SIZE: the bound on the rest is checked record by record.
  if (length < BigInt(minimum) || length > BigInt(EXTENSION_LENGTH_LIMIT) || length % 8n !== 0n) {
    throw new ExtensionFormatError(base + 8, `extension length ${length} is not a multiple of 8 between ${minimum} and ${EXTENSION_LENGTH_LIMIT}`);
  }
  return { version, length: Number(length) };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A record being read: its payload, and image offsets for errors. */
class RecordView {
  constructor(
    readonly payload: Buffer,
    /** Image offset of the record header. */
    readonly at: number,
    readonly name: string,
  ) {}

  /** Image offset of payload byte `pos`. */
  offsetOf(pos: number): number {
    return this.at + RECORD_HEADER_SIZE + pos;
  }

  fail(pos: number, problem: string): never {
    throw new ExtensionFormatError(this.offsetOf(pos), `${this.name} record: ${problem}`);
  }

  /** The record's length field. */
  failLength(problem: string): never {
    throw new ExtensionFormatError(this.at + 4, `${this.name} record: ${problem}`);
  }

  expectLength(expected: number): void {
    if (this.payload.length !== expected) this.failLength(`length ${this.payload.length}, expected ${expected}`);
  }

  /**
   * The u32 count at payload byte countAt of entries of `size` bytes that follow byte `fixed`,
   * checked to fill the record exactly.
   */
  entryCount(countAt: number, fixed: number, size: number, what: string): number {
    const count = this.payload.readUInt32LE(countAt);
    if (count > (this.payload.length - fixed) / size) this.fail(countAt, `${count} ${what} do not fit the record`);
    this.expectLength(fixed + count * size);
    return count;
  }

  /** Payload bytes [from, to) must be zeros (padding): the first that is not fails with problem. */
  expectZeros(from: number, to: number, problem: string): void {
    const nonZero = this.payload.subarray(from, to).findIndex((b) => b !== 0);
    if (nonZero >= 0) this.fail(from + nonZero, problem);
  }

  expectAtLeast(minimum: number): void {
    if (this.payload.length < minimum) this.failLength(`length ${this.payload.length}, expected at least ${minimum}`);
  }

  /** A u64 that must be a safe JS number. */
  number(pos: number, what: string): number {
    const v = this.payload.readBigUInt64LE(pos);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(pos, `${what} ${hex(v)} is out of range`);
    return Number(v);
  }

  /** Payload bytes from pos to end (the payload's, by default), as a path or link target. */
  text(pos: number, what: string, end = this.payload.length): string {
    const bytes = this.payload.subarray(pos, end);
    const nul = bytes.indexOf(0);
    if (nul >= 0) this.fail(pos + nul, `${what} contains a NUL byte`);
    try {
      return utf8.decode(bytes);
    } catch {
      return this.fail(pos, `${what} is not valid UTF-8`);
    }
  }
}

const RECORD_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(RecordType).map(([name, code]) => [code, name]),
);

function readThread(r: RecordView): ExtensionThread {
  r.expectAtLeast(THREAD_FIXED_SIZE);
  const p = r.payload;
  const tid = p.readUInt32LE(0);
  if (tid === 0 || tid > 0x3fff_ffff) r.fail(0, `tid ${tid} is not a thread id`);
  const tlsCount = p.readUInt32LE(4);
  if (tlsCount > CKPT_TLS_ENTRIES) r.fail(4, `${tlsCount} TLS entries, at most ${CKPT_TLS_ENTRIES}`);
  const fpregsSize = p.readUInt32LE(16 + USER_REGS_SIZE);
  if (fpregsSize !== FPREGS_SIZE) r.fail(16 + USER_REGS_SIZE, `fpregs size ${fpregsSize}, expected ${FPREGS_SIZE}`);
  const xstateSize = p.readUInt32LE(20 + USER_REGS_SIZE);
  if (xstateSize > XSTATE_MAX_SIZE) r.fail(20 + USER_REGS_SIZE, `xstate size ${xstateSize} exceeds ${XSTATE_MAX_SIZE}`);
  r.expectLength(threadPayloadSize(tlsCount, xstateSize));
  const regs = {} as UserRegs;
  USER_REGS_ORDER.forEach((name, i) => { regs[name] = p.readBigUInt64LE(16 + i * 8); });
  const tls = Array.from({ length: tlsCount }, (_, i) => {
    const at = THREAD_FIXED_SIZE + i * USER_DESC_SIZE;
    const desc = decodeUserDesc(p, at);
    if (desc.entryNumber < GDT_ENTRY_TLS_MIN || desc.entryNumber >= GDT_ENTRY_TLS_MIN + CKPT_TLS_ENTRIES) {
      r.fail(at, `TLS entry ${i}: GDT entry ${desc.entryNumber}, not one of the TLS entries ${GDT_ENTRY_TLS_MIN}..${GDT_ENTRY_TLS_MIN + CKPT_TLS_ENTRIES - 1}`);
    }
    return desc;
  });
  const fpregsAt = THREAD_FIXED_SIZE + tlsCount * USER_DESC_SIZE;
  return {
    tid,
    regs,
    tls,
    sigmask: p.readBigUInt64LE(8),
    fpregs: Buffer.from(p.subarray(fpregsAt, fpregsAt + FPREGS_SIZE)),
    xstate: Buffer.from(p.subarray(fpregsAt + FPREGS_SIZE)),
  };
}

function readMappedFile(r: RecordView, previousEnd: number): ExtensionMappedFile {
  r.expectAtLeast(MAPPED_FILE_FIXED_SIZE);
  const start = r.number(0, 'start');
  const end = r.number(8, 'end');
  if (start % PAGE_SIZE !== 0) r.fail(0, `start ${hex(start)} is not page-aligned`);
  if (end % PAGE_SIZE !== 0) r.fail(8, `end ${hex(end)} is not page-aligned`);
  if (end <= start) r.fail(8, `end ${hex(end)} is not above start ${hex(start)}`);
  if (start < previousEnd) r.fail(0, `start ${hex(start)} is below the previous mapped file's end ${hex(previousEnd)}`);
  return {
    start,
    end,
    dev: r.payload.readBigUInt64LE(16),
    inode: r.payload.readBigUInt64LE(24),
    size: r.number(32, 'size'),
    mtimeNs: r.payload.readBigInt64LE(40),
    path: r.text(MAPPED_FILE_FIXED_SIZE, 'path'),
  };
}

/**
 * The values a per-thread (or per-fd) record adds to its THREAD (FD) record, which may come before
 * or after it; key: the tid (fd number).
 */
interface RecordPart<T> {
  key: number;
  /** The record, for an error found once all THREAD (FD) records are known. */
  record: RecordView;
  values: Partial<T>;
}
type ThreadPart = RecordPart<ExtensionThread>;
type FdPart = RecordPart<ExtensionFd>;

/** The u32 tid at payload byte 0 of a per-thread record. */
function readTid(r: RecordView): number {
  const tid = r.payload.readUInt32LE(0);
  if (tid === 0 || tid > 0x3fff_ffff) r.fail(0, `tid ${tid} is not a thread id`);
  return tid;
}

function readThreadFutex(r: RecordView): ThreadPart {
  r.expectLength(THREAD_FUTEX_SIZE);
  const tid = readTid(r);
  if (r.payload.readUInt32LE(4) !== 0) r.fail(4, 'pad is not 0');
  return {
    key: tid,
    record: r,
    values: {
      clearChildTid: r.number(8, 'clear_child_tid'),
      robustList: { head: r.number(16, 'robust list head'), len: r.number(24, 'robust list length') },
    },
  };
}

function readThreadRseq(r: RecordView): ThreadPart {
  r.expectLength(THREAD_RSEQ_SIZE);
  const tid = readTid(r);
  if (r.payload.readUInt32LE(20) !== 0) r.fail(20, 'pad is not 0');
  const rseq = { length: r.payload.readUInt32LE(4), address: r.number(8, 'rseq address'), signature: r.payload.readUInt32LE(16) };
  return { key: tid, record: r, values: { rseq } };
}

function readThreadSigaltstack(r: RecordView): ThreadPart {
  r.expectLength(THREAD_SIGALTSTACK_SIZE);
  const sigaltstack = { flags: r.payload.readUInt32LE(4), sp: r.number(8, 'sigaltstack sp'), size: r.number(16, 'sigaltstack size') };
  return { key: readTid(r), record: r, values: { sigaltstack } };
}

function readThreadIdentity(r: RecordView): ThreadPart {
  r.expectAtLeast(THREAD_IDENTITY_FIXED_SIZE);
  const tid = readTid(r);
  const nameLength = r.payload.readUInt32LE(4);
  if (nameLength < 1 || nameLength > THREAD_NAME_MAX) r.fail(4, `a name of ${nameLength} bytes (1..${THREAD_NAME_MAX})`);
  if (r.payload.subarray(8 + nameLength, 24).some((b) => b !== 0)) r.fail(8 + nameLength, 'the name is not NUL-padded');
  const ids = (from: number) => [0, 1, 2, 3].map((i) => r.payload.readUInt32LE(from + 4 * i)) as [number, number, number, number];
  const set = (i: number) => r.payload.readBigUInt64LE(56 + 8 * i);
  const noNewPrivs = r.payload.readUInt32LE(100);
  if (noNewPrivs > 1) r.fail(100, `no_new_privs ${noNewPrivs} is neither 0 nor 1`);
  const count = r.entryCount(104, THREAD_IDENTITY_FIXED_SIZE, 4, 'groups');
  if (r.payload.readUInt32LE(108) !== 0) r.fail(108, 'pad is not 0');
  const identity: ThreadIdentity = {
    name: Buffer.from(r.payload.subarray(8, 8 + nameLength)),
    uids: ids(24), gids: ids(40),
    groups: Array.from({ length: count }, (_, i) => r.payload.readUInt32LE(THREAD_IDENTITY_FIXED_SIZE + 4 * i)),
    caps: { inheritable: set(0), permitted: set(1), effective: set(2), bounding: set(3), ambient: set(4) },
    securebits: r.payload.readUInt32LE(96),
    noNewPrivs: noNewPrivs === 1,
  };
  return { key: tid, record: r, values: { identity } };
}

/** A SECCOMP_FILTER record, the index-th of the extension (they come in index order). */
function readSeccompFilter(r: RecordView, index: number): SeccompFilter {
  r.expectAtLeast(SECCOMP_FILTER_FIXED_SIZE);
  const recorded = r.payload.readUInt32LE(0);
  if (recorded !== index) r.fail(0, `filter index ${recorded}, expected ${index} (they ascend from 0)`);
  const flags = r.payload.readUInt32LE(4);
  if ((flags & ~SECCOMP_FILTER_LOG) !== 0) r.fail(4, `unknown flags ${hex(flags)}`);
  const count = r.entryCount(8, SECCOMP_FILTER_FIXED_SIZE, BPF_INSTRUCTION_SIZE, 'instructions');
  if (count < 1 || count > BPF_MAX_INSTRUCTIONS) r.fail(8, `${count} instructions (1..${BPF_MAX_INSTRUCTIONS})`);
  if (r.payload.readUInt32LE(12) !== 0) r.fail(12, 'pad is not 0');
  return { program: Buffer.from(r.payload.subarray(SECCOMP_FILTER_FIXED_SIZE)), log: (flags & SECCOMP_FILTER_LOG) !== 0 };
}

function readThreadSeccomp(r: RecordView): ThreadPart {
  r.expectAtLeast(THREAD_SECCOMP_FIXED_SIZE);
  const tid = readTid(r);
  const mode = r.payload.readUInt32LE(4);
  const count = r.entryCount(8, THREAD_SECCOMP_FIXED_SIZE, 4, 'filters');
  if (r.payload.readUInt32LE(12) !== 0) r.fail(12, 'pad is not 0');
  if (mode === SECCOMP_MODE_STRICT) {
    if (count !== 0) r.fail(8, `${count} filters in strict mode`);
    return { key: tid, record: r, values: { seccomp: { mode: 'strict' } } };
  }
  if (mode !== SECCOMP_MODE_FILTER) r.fail(4, `seccomp mode ${mode} is neither 1 (strict) nor 2 (filter)`);
  if (count === 0) r.fail(8, 'no filter in filter mode');
  const filters = Array.from({ length: count }, (_, i) => r.payload.readUInt32LE(THREAD_SECCOMP_FIXED_SIZE + 4 * i));
  return { key: tid, record: r, values: { seccomp: { mode: 'filter', filters } } };
}

function readThreadScheduling(r: RecordView): ThreadPart {
  r.expectAtLeast(THREAD_SCHEDULING_FIXED_SIZE);
  const tid = readTid(r);
  const p = r.payload;
  const nice = p.readInt32LE(16);
  if (nice < -20 || nice > 19) r.fail(16, `nice ${nice} is not in -20..19`);
  const masked = p.readUInt32LE(60);
  if (masked < 8 || masked > CPU_MASK_MAX || masked % 8 !== 0) r.fail(60, `a CPU mask of ${masked} bytes (a multiple of 8, 8..${CPU_MASK_MAX})`);
  r.expectLength(THREAD_SCHEDULING_FIXED_SIZE + masked);
  const scheduling: ThreadScheduling = {
    policy: p.readUInt32LE(4), flags: p.readBigUInt64LE(8), nice, priority: p.readUInt32LE(20),
    runtime: p.readBigUInt64LE(24), deadline: p.readBigUInt64LE(32), period: p.readBigUInt64LE(40),
    utilMin: p.readUInt32LE(48), utilMax: p.readUInt32LE(52), ioprio: p.readUInt32LE(56),
    cpus: Buffer.from(p.subarray(THREAD_SCHEDULING_FIXED_SIZE)), timerSlackNs: p.readBigUInt64LE(64),
  };
  return { key: tid, record: r, values: { scheduling } };
}

function readInotify(r: RecordView): FdPart {
  r.expectAtLeast(INOTIFY_FIXED_SIZE);
  const count = r.payload.readUInt32LE(4);
  if (count > (r.payload.length - INOTIFY_FIXED_SIZE) / INOTIFY_WATCH_FIXED_SIZE) r.fail(4, `${count} watches do not fit the record`);
  const inotify: InotifyWatch[] = [];
  let pos = INOTIFY_FIXED_SIZE;
  for (let i = 0; i < count; i++) {
    if (pos + INOTIFY_WATCH_FIXED_SIZE > r.payload.length) r.fail(4, `${count} watches do not fit the record`);
    const wd = r.payload.readInt32LE(pos);
    if (wd < 1 || (i > 0 && wd <= inotify[i - 1].wd)) r.fail(pos, `watch descriptor ${wd} is not above ${i > 0 ? inotify[i - 1].wd : 0}`);
    const length = r.payload.readUInt32LE(pos + 16);
    if (r.payload.readUInt32LE(pos + 20) !== 0) r.fail(pos + 20, `watch ${wd}: pad is not 0`);
    const start = pos + INOTIFY_WATCH_FIXED_SIZE;
    if (start + align8(length) > r.payload.length) r.fail(pos + 16, `watch ${wd}: a path of ${length} bytes runs past the record`);
    r.expectZeros(start + length, start + align8(length), `watch ${wd}: the path is not zero-padded`);
    inotify.push({
      wd, mask: r.payload.readUInt32LE(pos + 4), inode: r.payload.readBigUInt64LE(pos + 8),
      path: length === 0 ? null : r.text(start, `watch ${wd} path`, start + length),
    });
    pos = start + align8(length);
  }
  if (pos !== r.payload.length) r.failLength(`length ${r.payload.length}, but its ${count} watches end at ${pos}`);
  return { key: readFdNumber(r), record: r, values: { inotify } };
}

function readFileContent(r: RecordView): FdPart {
  r.expectAtLeast(FILE_CONTENT_FIXED_SIZE);
  const flags = r.payload.readUInt32LE(4);
  if ((flags & ~FILE_CONTENT_MEMFD) !== 0) r.fail(4, `unknown flags ${hex(flags)}`);
  const size = r.number(16, 'size');
  if (size > FILE_CONTENT_MAX) r.fail(16, `size ${size} is more than ${FILE_CONTENT_MAX}`);
  r.expectLength(FILE_CONTENT_FIXED_SIZE + size);
  const content: FileContent = {
    memfd: (flags & FILE_CONTENT_MEMFD) !== 0, seals: r.payload.readUInt32LE(8), mode: r.payload.readUInt32LE(12),
    bytes: Buffer.from(r.payload.subarray(FILE_CONTENT_FIXED_SIZE)),
  };
  return { key: readFdNumber(r), record: r, values: { content } };
}

function readSocketData(r: RecordView): FdPart {
  r.expectAtLeast(SOCKET_DATA_FIXED_SIZE);
  const count = r.payload.readUInt32LE(4);
  if (count === 0 || count > (r.payload.length - SOCKET_DATA_FIXED_SIZE) / SOCKET_MESSAGE_FIXED_SIZE) r.fail(4, `${count} messages do not fit the record`);
  if (r.payload.length > SOCKET_DATA_MAX + count * (SOCKET_MESSAGE_FIXED_SIZE + 8)) r.failLength(`length ${r.payload.length}: more than ${SOCKET_DATA_MAX} bytes of messages`);
  const queued: Buffer[] = [];
  let pos = SOCKET_DATA_FIXED_SIZE;
  for (let i = 0; i < count; i++) {
    if (pos + SOCKET_MESSAGE_FIXED_SIZE > r.payload.length) r.fail(4, `${count} messages do not fit the record`);
    const length = r.payload.readUInt32LE(pos);
    if (r.payload.readUInt32LE(pos + 4) !== 0) r.fail(pos + 4, `message ${i}: pad is not 0`);
    const start = pos + SOCKET_MESSAGE_FIXED_SIZE;
    if (start + align8(length) > r.payload.length) r.fail(pos, `message ${i}: ${length} bytes run past the record`);
    r.expectZeros(start + length, start + align8(length), `message ${i} is not zero-padded`);
    queued.push(Buffer.from(r.payload.subarray(start, start + length)));
    pos = start + align8(length);
  }
  if (pos !== r.payload.length) r.failLength(`length ${r.payload.length}, but its ${count} messages end at ${pos}`);
  return { key: readFdNumber(r), record: r, values: { queued } };
}

function readProcessSettings(r: RecordView): ProcessSettings {
  r.expectLength(PROCESS_SETTINGS_SIZE);
  const oomScoreAdj = r.payload.readInt32LE(0);
  if (Math.abs(oomScoreAdj) > 1000) r.fail(0, `oom_score_adj ${oomScoreAdj} is not in -1000..1000`);
  return { oomScoreAdj, personality: r.payload.readUInt32LE(4) };
}

/** Every filter a THREAD_SECCOMP record names is one of the SECCOMP_FILTER records. */
function checkSeccompFilterIndices(parts: readonly ThreadPart[], filterCount: number): void {
  for (const { record, values } of parts) {
    if (values.seccomp?.mode !== 'filter') continue;
    const i = values.seccomp.filters.findIndex((index) => index >= filterCount);
    if (i >= 0) record.fail(THREAD_SECCOMP_FIXED_SIZE + 4 * i, `filter ${values.seccomp.filters[i]}, but the image has ${filterCount} SECCOMP_FILTER records`);
  }
}

/** A queue of pending signals: tid 0 for the shared one. */
function readPendingSignals(r: RecordView): { tid: number; signals: Buffer[] } {
  r.expectAtLeast(PENDING_SIGNALS_FIXED_SIZE);
  const tid = r.payload.readUInt32LE(0);
  if (tid !== 0) readTid(r);
  const count = r.entryCount(4, PENDING_SIGNALS_FIXED_SIZE, SIGINFO_SIZE, 'signals');
  const signals = Array.from({ length: count }, (_, i) => {
    const pos = PENDING_SIGNALS_FIXED_SIZE + i * SIGINFO_SIZE;
    const signal = r.payload.readInt32LE(pos);
    if (signal < 1 || signal > SIGNAL_COUNT) r.fail(pos, `si_signo ${signal} is not a signal`);
    return Buffer.from(r.payload.subarray(pos, pos + SIGINFO_SIZE));
  });
  return { tid, signals };
}

function readVmaFlags(r: RecordView): VmaFlags[] {
  if (r.payload.length % VMA_FLAGS_ENTRY_SIZE !== 0) r.failLength(`length ${r.payload.length} is not a multiple of ${VMA_FLAGS_ENTRY_SIZE}`);
  const entries: VmaFlags[] = [];
  for (let pos = 0; pos < r.payload.length; pos += VMA_FLAGS_ENTRY_SIZE) {
    const start = r.number(pos, 'VMA start');
    if (start % PAGE_SIZE !== 0) r.fail(pos, `VMA start 0x${start.toString(16)} is not page-aligned`);
    if (entries.length > 0 && start <= entries[entries.length - 1].start) r.fail(pos, `VMA start 0x${start.toString(16)} is not above the previous one`);
    const flags = r.payload.readUInt32LE(pos + 8);
    if ((flags & ~VMA_FLAGS_KNOWN) !== 0) r.fail(pos + 8, `unknown VMA flags 0x${flags.toString(16)}`);
    if (r.payload.readUInt32LE(pos + 12) !== 0) r.fail(pos + 12, 'pad is not 0');
    entries.push({ start, flags });
  }
  return entries;
}

function readUmask(r: RecordView): number {
  r.expectLength(UMASK_SIZE);
  const umask = r.payload.readUInt32LE(0);
  if (umask > 0o777) r.fail(0, `umask 0${umask.toString(8)} is not a file mode mask`);
  return umask;
}

function readRlimits(r: RecordView): ResourceLimit[] {
  r.expectAtLeast(RLIMITS_FIXED_SIZE);
  const count = r.payload.readUInt32LE(0);
  if (count > RLIMITS_MAX) r.fail(0, `${count} resources, at most ${RLIMITS_MAX}`);
  if (r.payload.readUInt32LE(4) !== 0) r.fail(4, 'pad is not 0');
  r.expectLength(RLIMITS_FIXED_SIZE + count * RLIMIT_SIZE);
  return Array.from({ length: count }, (_, resource) => {
    const pos = RLIMITS_FIXED_SIZE + resource * RLIMIT_SIZE;
    const soft = r.payload.readBigUInt64LE(pos);
    const hard = r.payload.readBigUInt64LE(pos + 8);
    if (soft > hard) r.fail(pos, `resource ${resource}: soft limit ${soft} above the hard limit ${hard}`);
    return { soft, hard };
  });
}

function readItimers(r: RecordView): IntervalTimer[] {
  r.expectLength(ITIMERS_SIZE);
  const time = (pos: number, what: string) => {
    const usec = r.payload.readBigUInt64LE(pos + 8);
    if (usec >= 1_000_000n) r.fail(pos + 8, `${what} microseconds ${usec} not below 1000000`);
    return { sec: r.number(pos, `${what} seconds`), usec: Number(usec) };
  };
  return Array.from({ length: ITIMER_COUNT }, (_, i) => ({
    interval: time(i * ITIMERVAL_SIZE, `timer ${i} interval`),
    value: time(i * ITIMERVAL_SIZE + 16, `timer ${i} value`),
  }));
}

/**
 * A POSIX_TIMERS record's timers; the tids they notify are checked against the THREAD records
 * once all are known (checkPosixTimerThreads).
 */
function readPosixTimers(r: RecordView): PosixTimer[] {
  r.expectAtLeast(POSIX_TIMERS_FIXED_SIZE);
  const count = r.payload.readUInt32LE(0);
  if (count > (r.payload.length - POSIX_TIMERS_FIXED_SIZE) / POSIX_TIMER_SIZE) r.fail(0, `${count} timers do not fit the record`);
  if (r.payload.readUInt32LE(4) !== 0) r.fail(4, 'pad is not 0');
  r.expectLength(POSIX_TIMERS_FIXED_SIZE + count * POSIX_TIMER_SIZE);
  const timers: PosixTimer[] = [];
  for (let i = 0; i < count; i++) {
    const pos = POSIX_TIMERS_FIXED_SIZE + i * POSIX_TIMER_SIZE;
    if (r.payload.readUInt32LE(pos + 28) !== 0) r.fail(pos + 28, `timer ${i}: pad is not 0`);
    const [interval, value] = readTimeSpecs(r, pos + 32, 2, `timer ${i}`);
    const timer = {
      id: r.payload.readInt32LE(pos),
      clock: r.payload.readInt32LE(pos + 4),
      notify: r.payload.readUInt32LE(pos + 8),
      tid: r.payload.readUInt32LE(pos + 24),
      signal: r.payload.readInt32LE(pos + 12),
      sigevValue: r.payload.readBigUInt64LE(pos + 16),
      interval,
      value,
    };
    const problem = posixTimerProblem(timer, i === 0 ? -1 : timers[i - 1].id, null);
    if (problem !== null) r.fail(pos, `timer ${i}: ${problem}`);
    timers.push(timer);
  }
  return timers;
}

/** Checks that each SIGEV_THREAD_ID timer of a POSIX_TIMERS record (r) notifies a thread with a THREAD record. */
function checkPosixTimerThreads(r: RecordView, timers: readonly PosixTimer[], threads: readonly ExtensionThread[]): void {
  timers.forEach(({ tid }, i) => {
    if (tid !== 0 && !threads.some((t) => t.tid === tid)) {
      r.fail(POSIX_TIMERS_FIXED_SIZE + i * POSIX_TIMER_SIZE + 24, `timer ${i}: thread ${tid} has no THREAD record`);
    }
  });
}

/**
 * Gives each part's values to its owner (a thread by tid, or an fd by number: `owner` names which,
 * keyOf tells an owner's key); a second record of a kind for one owner is an error.
 */
function attachParts<T extends object>(owners: T[], parts: readonly RecordPart<T>[], owner: 'thread' | 'fd', keyOf: (o: T) => number): void {
  for (const { key, record, values } of parts) {
    const found = owners.find((o) => keyOf(o) === key);
    if (found === undefined) throw new ExtensionFormatError(record.at, `${record.name} record: ${owner} ${key} has no ${owner.toUpperCase()} record`);
    if (Object.keys(values).some((name) => found[name as keyof T] !== undefined)) {
      throw new ExtensionFormatError(record.at, `${record.name} record: a second one for ${owner} ${key}`);
    }
    Object.assign(found, values);
  }
}

/**
 * Checks each per-fd record against its fd: an anon-inode state on that kind of anon inode, pipe
 * data on a read end of a pipe whose write end is in the process too (once per pipe), a socket's
 * peer another socket open in the process, a terminal's state on a tty; file locks fit any fd.
 */
function checkFdParts(parts: readonly FdPart[], fds: readonly ExtensionFd[]): void {
  const pipes = pipesWithBothEnds(fds);
  for (const { key, record, values } of parts) {
    const fd = fds.find((f) => f.fd === key)!;
    if (values.pipeData) {
      const readEnds = pipes.get(fd.target)?.read ?? [];
      if (!readEnds.includes(fd)) record.fail(0, `fd ${key} is not the read end of a pipe whose two ends are in the process`);
      if (readEnds.some((end) => end !== fd && end.pipeData)) record.fail(0, `fd ${key}: a second PIPE_DATA record for ${JSON.stringify(fd.target)}`);
      continue;
    }
    if (values.locks) continue; // any open file may hold locks
    if (values.sharesWith !== undefined) {
      const original = fds.find((f) => f.fd === values.sharesWith && f.fd < key);
      if (!original) return record.fail(4, `fd ${key}: fd ${values.sharesWith}, whose open file it shares, is no lower descriptor of the process`);
      if (original.target !== fd.target || original.kind !== fd.kind) record.fail(4, `fd ${key} and fd ${original.fd}, whose open file it shares, name different files`);
      if (parts.some((p) => p.key === original.fd && p.values.sharesWith !== undefined)) record.fail(4, `fd ${key}: fd ${original.fd} shares another's open file itself`);
      continue;
    }
    if (values.boundSocket || values.connectedSocket || values.netlink || values.unboundSocket) {
      if (fd.kind !== 'socket' || !fd.target.startsWith('socket:[')) record.fail(0, `fd ${key} is ${JSON.stringify(fd.target)}, not a socket`);
      const kinds = [
        fd.boundSocket && 'BOUND_SOCKET', fd.connectedSocket && 'CONNECTED_SOCKET', fd.netlink && 'NETLINK_SOCKET', fd.unboundSocket && 'UNBOUND_SOCKET', fd.unixPeer && 'UNIX_PEER',
      ].filter(Boolean);
      if (!values.boundSocket && kinds.length > 1) record.fail(0, `fd ${key} has both a ${kinds.filter((k) => k !== record.name)[0]} and a ${record.name} record`);
      continue;
    }
    if (values.queued) {
      if (!fd.unixPeer) record.fail(0, `fd ${key} is no end of a socket pair`);
      continue;
    }
    if (values.content || values.fileState) {
      if (fd.kind !== 'file') record.fail(0, `fd ${key} is ${JSON.stringify(fd.target)}, not a regular file`);
      continue;
    }
    if (values.socketOptions) {
      if (!takesOptions(fd)) record.fail(0, `fd ${key} has no BOUND_SOCKET or UNBOUND_SOCKET record, nor a CONNECTED_SOCKET record of a datagram socket`);
      continue;
    }
    if (values.terminal) {
      if (fd.kind !== 'tty') record.fail(0, `fd ${key} is ${JSON.stringify(fd.target)}, not a terminal`);
      continue;
    }
    if (values.unixPeer) {
      const peer = `socket:[${values.unixPeer.peer}]`;
      if (fd.kind !== 'socket' || !fd.target.startsWith('socket:[')) record.fail(0, `fd ${key} is ${JSON.stringify(fd.target)}, not a socket`);
      if (peer === fd.target || !fds.some((f) => f.kind === 'socket' && f.target === peer)) record.fail(8, `fd ${key}: its peer ${peer} is no other socket open in the process`);
      continue;
    }
    const target = FD_STATE_TARGETS[Object.keys(values)[0] as FdStateKey];
    // Quoted: the target is the image's text, and the message must stay one line whatever it holds.
    if (fd.target !== target) record.fail(0, `fd ${key} is ${JSON.stringify(fd.target)}, not ${target}`);
  }
}

/** The u32 fd at payload byte 0 of a per-fd record. */
function readFdNumber(r: RecordView): number {
  const fd = r.payload.readUInt32LE(0);
  if (!isFdNumber(fd)) r.fail(0, `fd ${fd} is not a file descriptor number`);
  return fd;
}

function readEventFd(r: RecordView): FdPart {
  r.expectLength(EVENTFD_SIZE);
  const flags = r.payload.readUInt32LE(4);
  if ((flags & ~EVENTFD_SEMAPHORE_FLAG) !== 0) r.fail(4, `unknown eventfd flags ${hex(flags)}`);
  const count = r.payload.readBigUInt64LE(8);
  if (count > EVENTFD_COUNT_MAX) r.fail(8, `eventfd count ${hex(count)} above ${hex(EVENTFD_COUNT_MAX)}`);
  return { key: readFdNumber(r), record: r, values: { eventfd: { count, semaphore: flags !== 0 } } };
}

function readEpoll(r: RecordView): FdPart {
  r.expectAtLeast(EPOLL_FIXED_SIZE);
  const count = r.entryCount(4, EPOLL_FIXED_SIZE, EPOLL_TARGET_SIZE, 'targets');
  const epoll = Array.from({ length: count }, (_, i) => {
    const pos = EPOLL_FIXED_SIZE + i * EPOLL_TARGET_SIZE;
    const fd = r.payload.readUInt32LE(pos);
    if (!isFdNumber(fd)) r.fail(pos, `target ${fd} is not a file descriptor number`);
    return { fd, events: r.payload.readUInt32LE(pos + 4), data: r.payload.readBigUInt64LE(pos + 8) };
  });
  return { key: readFdNumber(r), record: r, values: { epoll } };
}

function readTimerFd(r: RecordView): FdPart {
  r.expectLength(TIMERFD_SIZE);
  if (r.payload.readUInt32LE(12) !== 0) r.fail(12, 'pad is not 0');
  const [interval, value] = readTimeSpecs(r, 24, 2, 'timerfd');
  const timerfd = {
    clock: r.payload.readInt32LE(4), settimeFlags: r.payload.readUInt32LE(8), ticks: r.payload.readBigUInt64LE(16), interval, value,
  };
  return { key: readFdNumber(r), record: r, values: { timerfd } };
}

function readPipeData(r: RecordView): FdPart {
  r.expectAtLeast(PIPE_DATA_FIXED_SIZE);
  const capacity = r.payload.readUInt32LE(4);
  const bytes = r.payload.length - PIPE_DATA_FIXED_SIZE;
  const problem = pipeDataProblem(capacity, bytes);
  if (problem !== null) r.fail(4, problem);
  // A copy: the payload is a view into the image reader's chunk, which is read over later.
  return { key: readFdNumber(r), record: r, values: { pipeData: { capacity, bytes: Buffer.from(r.payload.subarray(PIPE_DATA_FIXED_SIZE)) } } };
}

function readMappedContent(r: RecordView): MappedContent {
  r.expectAtLeast(MAPPED_CONTENT_FIXED_SIZE);
  if (r.payload.readUInt32LE(20) !== 0) r.fail(20, 'pad is not 0');
  const size = r.number(24, 'size');
  if (size > MAPPED_CONTENT_MAX) r.fail(24, `size ${size} is more than ${MAPPED_CONTENT_MAX}`);
  r.expectLength(MAPPED_CONTENT_FIXED_SIZE + size);
  return {
    dev: r.payload.readBigUInt64LE(0), inode: r.payload.readBigUInt64LE(8), mode: r.payload.readUInt32LE(16),
    bytes: Buffer.from(r.payload.subarray(MAPPED_CONTENT_FIXED_SIZE)),
  };
}

function readGuardPages(r: RecordView): Array<[number, number]> {
  if (r.payload.length % GUARD_PAGES_ENTRY_SIZE !== 0) r.failLength(`length ${r.payload.length} is not a multiple of ${GUARD_PAGES_ENTRY_SIZE}`);
  const runs: Array<[number, number]> = [];
  for (let pos = 0; pos < r.payload.length; pos += GUARD_PAGES_ENTRY_SIZE) {
    const start = r.number(pos, 'start');
    const end = r.number(pos + 8, 'end');
    const problem = guardRunProblem(start, end, runs.length > 0 ? runs[runs.length - 1][1] : 0);
    if (problem) r.fail(pos, `guard page run ${runs.length}: ${problem}`);
    runs.push([start, end]);
  }
  return runs;
}

function readChildren(r: RecordView): number[] {
  r.expectAtLeast(CHILDREN_FIXED_SIZE);
  const count = r.entryCount(0, CHILDREN_FIXED_SIZE, 4, 'pids');
  if (r.payload.readUInt32LE(4) !== 0) r.fail(4, 'pad is not 0');
  return Array.from({ length: count }, (_, i) => {
    const pid = r.payload.readUInt32LE(CHILDREN_FIXED_SIZE + 4 * i);
    if (pid < 1 || pid > PID_MAX) r.fail(CHILDREN_FIXED_SIZE + 4 * i, `child ${i}: ${pid} is not a pid`);
    return pid;
  });
}

function readFileLocks(r: RecordView): FdPart {
  r.expectAtLeast(FILE_LOCKS_FIXED_SIZE);
  const count = r.entryCount(4, FILE_LOCKS_FIXED_SIZE, FILE_LOCK_SIZE, 'locks');
  const locks = Array.from({ length: count }, (_, i): FileLock => {
    const pos = FILE_LOCKS_FIXED_SIZE + i * FILE_LOCK_SIZE;
    const kind = FILE_LOCK_KINDS[r.payload.readUInt32LE(pos) - 1];
    if (kind === undefined) r.fail(pos, `lock ${i}: unknown kind ${r.payload.readUInt32LE(pos)}`);
    const type = r.payload.readUInt32LE(pos + 4);
    if (type !== FILE_LOCK_READ && type !== FILE_LOCK_WRITE) r.fail(pos + 4, `lock ${i}: unknown type ${type}`);
    const start = r.number(pos + 8, `lock ${i} start`);
    const toEof = r.payload.readBigUInt64LE(pos + 16) === FILE_LOCK_TO_EOF;
    const end = toEof ? null : r.number(pos + 16, `lock ${i} end`);
    if (end !== null && end < start) r.fail(pos + 16, `lock ${i}: end ${end} before start ${start}`);
    return { kind, write: type === FILE_LOCK_WRITE, start, end };
  });
  return { key: readFdNumber(r), record: r, values: { locks } };
}

function readUnixPeer(r: RecordView): FdPart {
  r.expectLength(UNIX_PEER_SIZE);
  const type = r.payload.readUInt32LE(4);
  if (!SOCKET_PAIR_TYPES.has(type)) r.fail(4, `socket type ${type} is not one of a socket pair`);
  return { key: readFdNumber(r), record: r, values: { unixPeer: { type, peer: r.number(8, 'peer inode') } } };
}

function readSharedFd(r: RecordView): FdPart {
  r.expectLength(SHARED_FD_SIZE);
  const original = r.payload.readUInt32LE(4);
  if (!isFdNumber(original)) r.fail(4, `fd ${original} is not a file descriptor number`);
  return { key: readFdNumber(r), record: r, values: { sharesWith: original } };
}

function readBoundSocket(r: RecordView): FdPart {
  r.expectAtLeast(BOUND_SOCKET_FIXED_SIZE);
  const flags = r.payload.readUInt16LE(10);
  if ((flags & ~(BOUND_SOCKET_LISTENING | BOUND_SOCKET_V6ONLY | BOUND_SOCKET_REUSEPORT | BOUND_SOCKET_FILE)) !== 0) r.fail(10, `unknown flags ${hex(flags)}`);
  const hasFile = (flags & BOUND_SOCKET_FILE) !== 0;
  if (!hasFile) for (const pos of [16, 20, 24]) if (r.payload.readUInt32LE(pos) !== 0) r.fail(pos, 'not 0 without a socket file');
  if (r.payload.readUInt32LE(28) !== 0) r.fail(28, 'pad is not 0');
  const boundSocket: BoundSocket = {
    family: r.payload.readUInt16LE(4), type: r.payload.readUInt16LE(6), protocol: r.payload.readUInt16LE(8),
    listening: (flags & BOUND_SOCKET_LISTENING) !== 0, v6only: (flags & BOUND_SOCKET_V6ONLY) !== 0,
    reuseport: (flags & BOUND_SOCKET_REUSEPORT) !== 0,
    ...(hasFile ? { file: { mode: r.payload.readUInt32LE(16), uid: r.payload.readUInt32LE(20), gid: r.payload.readUInt32LE(24) } } : {}),
    backlog: r.payload.readUInt32LE(12),
    // A copy: the payload is a view into the image reader's chunk, which is read over later.
    address: Buffer.from(r.payload.subarray(BOUND_SOCKET_FIXED_SIZE)),
  };
  const problem = boundSocketProblem(boundSocket);
  if (problem !== null) r.fail(problem.at, problem.message);
  return { key: readFdNumber(r), record: r, values: { boundSocket } };
}

function readConnectedSocket(r: RecordView): FdPart {
  r.expectAtLeast(CONNECTED_SOCKET_FIXED_SIZE);
  const localLength = r.payload.readUInt16LE(12);
  const peerLength = r.payload.readUInt16LE(14);
  r.expectLength(CONNECTED_SOCKET_FIXED_SIZE + localLength + peerLength);
  // Copies: the payload is a view into the image reader's chunk, which is read over later.
  const local = Buffer.from(r.payload.subarray(CONNECTED_SOCKET_FIXED_SIZE, CONNECTED_SOCKET_FIXED_SIZE + localLength));
  const connectedSocket: ConnectedSocket = {
    family: r.payload.readUInt16LE(4), type: r.payload.readUInt16LE(6), protocol: r.payload.readUInt16LE(8), state: r.payload.readUInt16LE(10),
    local, peer: Buffer.from(r.payload.subarray(CONNECTED_SOCKET_FIXED_SIZE + localLength)),
  };
  const problem = connectedSocketProblem(connectedSocket);
  if (problem !== null) r.fail(problem.at, problem.message);
  return { key: readFdNumber(r), record: r, values: { connectedSocket } };
}

function readNetlinkSocket(r: RecordView): FdPart {
  r.expectAtLeast(NETLINK_SOCKET_FIXED_SIZE);
  const count = r.entryCount(12, NETLINK_SOCKET_FIXED_SIZE, 4, 'groups');
  const netlink: NetlinkSocket = {
    type: r.payload.readUInt32LE(4), protocol: r.payload.readUInt32LE(8),
    groups: Array.from({ length: count }, (_, i) => r.payload.readUInt32LE(NETLINK_SOCKET_FIXED_SIZE + 4 * i)),
  };
  const problem = netlinkSocketProblem(netlink);
  if (problem !== null) r.fail(problem.at, problem.message);
  return { key: readFdNumber(r), record: r, values: { netlink } };
}

function readUnboundSocket(r: RecordView): FdPart {
  r.expectLength(UNBOUND_SOCKET_SIZE);
  const flags = r.payload.readUInt16LE(10);
  if ((flags & ~(UNBOUND_SOCKET_REUSEADDR | UNBOUND_SOCKET_REUSEPORT | UNBOUND_SOCKET_V6ONLY)) !== 0) r.fail(10, `unknown flags ${hex(flags)}`);
  const unboundSocket: UnboundSocket = {
    family: r.payload.readUInt16LE(4), type: r.payload.readUInt16LE(6), protocol: r.payload.readUInt16LE(8),
    reuseaddr: (flags & UNBOUND_SOCKET_REUSEADDR) !== 0, reuseport: (flags & UNBOUND_SOCKET_REUSEPORT) !== 0, v6only: (flags & UNBOUND_SOCKET_V6ONLY) !== 0,
  };
  const problem = unboundSocketProblem(unboundSocket);
  if (problem !== null) r.fail(problem.at, problem.message);
  return { key: readFdNumber(r), record: r, values: { unboundSocket } };
}

function readFileState(r: RecordView): FdPart {
  r.expectLength(FILE_STATE_SIZE);
  if (r.payload.readUInt32LE(4) !== 0) r.fail(4, `padding ${r.payload.readUInt32LE(4)} is not 0`);
  const fileState: OpenFileState = {
    dev: r.payload.readBigUInt64LE(8), inode: r.payload.readBigUInt64LE(16), size: r.number(24, 'size'), mtimeNs: r.payload.readBigInt64LE(32),
  };
  return { key: readFdNumber(r), record: r, values: { fileState } };
}

function readTerminal(r: RecordView): FdPart {
  r.expectLength(TERMINAL_SIZE);
  const flags = r.payload.readUInt32LE(4);
  if ((flags & ~(TERMINAL_CONTROLLING | TERMINAL_FOREGROUND)) !== 0) r.fail(4, `unknown flags ${hex(flags)}`);
  const size = (i: number) => r.payload.readUInt16LE(TERMINAL_WINSIZE_AT + 2 * i);
  const terminal: TerminalState = {
    // A copy: the payload is a view into the image reader's chunk, which is read over later.
    termios: Buffer.from(r.payload.subarray(TERMINAL_TERMIOS_AT, TERMINAL_WINSIZE_AT)),
    rows: size(0), columns: size(1), xpixels: size(2), ypixels: size(3),
    controlling: (flags & TERMINAL_CONTROLLING) !== 0, foreground: (flags & TERMINAL_FOREGROUND) !== 0,
  };
  const problem = terminalProblem(terminal);
  if (problem !== null) r.fail(problem.at, problem.message);
  return { key: readFdNumber(r), record: r, values: { terminal } };
}

function readSocketOptions(r: RecordView): FdPart {
  r.expectAtLeast(SOCKET_OPTIONS_FIXED_SIZE);
  const count = r.entryCount(4, SOCKET_OPTIONS_FIXED_SIZE, SOCKET_OPTION_SIZE, 'options');
  if (count === 0 || count > SOCKET_OPTIONS_MAX) r.fail(4, `${count} options (1..${SOCKET_OPTIONS_MAX})`);
  const socketOptions = Array.from({ length: count }, (_, i): SocketOption => {
    const at = SOCKET_OPTIONS_FIXED_SIZE + i * SOCKET_OPTION_SIZE;
    const length = r.payload.readUInt32LE(at + 8);
    if (length < 1 || length > SOCKET_OPTION_VALUE_MAX) r.fail(at + 8, `option ${i}: a value of ${length} bytes (1..${SOCKET_OPTION_VALUE_MAX})`);
    if (r.payload.readUInt32LE(at + 12) !== 0) r.fail(at + 12, `option ${i}: pad is not 0`);
    r.expectZeros(at + 16 + length, at + SOCKET_OPTION_SIZE, `option ${i}: the value is not zero-padded`);
    return { level: r.payload.readUInt32LE(at), name: r.payload.readUInt32LE(at + 4), value: Buffer.from(r.payload.subarray(at + 16, at + 16 + length)) };
  });
  return { key: readFdNumber(r), record: r, values: { socketOptions } };
}

function readUserfaultfd(r: RecordView): FdPart {
  r.expectLength(USERFAULTFD_SIZE);
  const flags = r.payload.readUInt32LE(4);
  if ((flags & ~USERFAULTFD_API_DONE) !== 0) r.fail(4, `unknown userfaultfd flags ${hex(flags)}`);
  const features = r.payload.readBigUInt64LE(8);
  if (flags === 0 && features !== 0n) r.fail(8, `userfaultfd features ${hex(features)} without its UFFDIO_API done`);
  return { key: readFdNumber(r), record: r, values: { userfaultfd: { features: flags === 0 ? null : features } } };
}

function readSignalFd(r: RecordView): FdPart {
  r.expectLength(SIGNALFD_SIZE);
  if (r.payload.readUInt32LE(4) !== 0) r.fail(4, 'pad is not 0');
  return { key: readFdNumber(r), record: r, values: { signalfd: { mask: r.payload.readBigUInt64LE(8) } } };
}

/** count consecutive timespecs at payload byte pos: u64 seconds (below 2^53), u64 nanoseconds (below 10^9). */
function readTimeSpecs(r: RecordView, pos: number, count: number, what: string): TimeSpec[] {
  return Array.from({ length: count }, (_, j) => {
    const at = pos + j * 16;
    const nsec = r.payload.readBigUInt64LE(at + 8);
    if (nsec >= NSEC_PER_SEC) r.fail(at + 8, `${what}: nanoseconds ${nsec} not below ${NSEC_PER_SEC}`);
    return { sec: r.number(at, `${what} seconds`), nsec: Number(nsec) };
  });
}

function readSigactions(r: RecordView): ExtensionSigaction[] {
  r.expectAtLeast(SIGACTIONS_FIXED_SIZE);
  const count = r.payload.readUInt32LE(0);
  if (count !== SIGNAL_COUNT) r.fail(0, `${count} dispositions, expected ${SIGNAL_COUNT}`);
  if (r.payload.readUInt32LE(4) !== 0) r.fail(4, 'pad is not 0');
  r.expectLength(SIGACTIONS_FIXED_SIZE + count * SIGACTION_SIZE);
  return Array.from({ length: count }, (_, i) => {
    const pos = SIGACTIONS_FIXED_SIZE + i * SIGACTION_SIZE;
    return {
      handler: r.payload.readBigUInt64LE(pos),
      flags: r.payload.readBigUInt64LE(pos + 8),
      restorer: r.payload.readBigUInt64LE(pos + 16),
      mask: r.payload.readBigUInt64LE(pos + 24),
    };
  });
}

function readFd(r: RecordView, previousFd: number): ExtensionFd {
  r.expectAtLeast(FD_FIXED_SIZE);
  const fd = r.payload.readUInt32LE(0);
  if (fd > 0x7fff_ffff) r.fail(0, `fd ${fd} is not a file descriptor number`);
  if (fd <= previousFd) r.fail(0, `fd ${fd} is not above the previous fd ${previousFd}`);
  const code = r.payload.readUInt32LE(4);
  const kind = FD_KINDS[code - 1];
  if (kind === undefined) r.fail(4, `unknown fd kind ${code}`);
  if (r.payload.readUInt32LE(12) !== 0) r.fail(12, 'pad is not 0');
  return {
    fd,
    kind,
    flags: r.payload.readUInt32LE(8),
    offset: r.number(16, 'offset'),
    target: r.text(FD_FIXED_SIZE, 'target'),
  };
}

function readAuxv(r: RecordView): Buffer {
  const n = r.payload.length;
  if (n === 0 || n % AUXV_ENTRY_SIZE !== 0) r.failLength(`length ${n} is not a positive multiple of ${AUXV_ENTRY_SIZE}`);
  if (r.payload.readBigUInt64LE(n - AUXV_ENTRY_SIZE) !== 0n) r.fail(n - AUXV_ENTRY_SIZE, 'the last entry is not AT_NULL');
  return Buffer.from(r.payload);
}

/** A record's header, checked against the extension's length: what a reader reads next. */
export interface RecordFrame {
  type: number;
  /** The payload length field. */
  length: number;
  /** Image offset of the record header. */
  at: number;
}

const EMPTY = Buffer.alloc(0);

/**
 * Decodes an extension record by record, as a streaming reader meets them: frame() checks each
 * record header, then record() takes its payload and padding, except for a SHARED_PAGES record,
 * whose fixed part goes to sharedPages.begin() and its page records, one by one, to
 * sharedPages.page(). The values are kept, the bytes are not: what a reader holds is bounded by
 * EXTENSION_MAX_SIZE, counted without the page records.
 */
export class ExtensionDecoder {
  readonly sharedPages = new SharedPagesDecoder();
  /** Offset of the next record, from the extension's start. */
  private pos = EXTENSION_HEADER_SIZE;
  private heldBytes = EXTENSION_HEADER_SIZE;
  private readonly found: Partial<ImageExtension> = {};
  private readonly threads: ExtensionThread[] = [];
  private readonly files: ExtensionMappedFile[] = [];
  private readonly fds: ExtensionFd[] = [];
  private readonly threadParts: ThreadPart[] = [];
  private readonly fdParts: FdPart[] = [];
  private readonly seccompFilters: SeccompFilter[] = [];
  private readonly mappedContents: MappedContent[] = [];
  private posixTimersRecord: RecordView | null = null;
  private result: ImageExtension | null = null;

  /** base: the image offset of the extension; length: its header's. */
  constructor(readonly base: number, readonly length: number) {}

  /** Bytes from the next record to the extension's end. */
  get remaining(): number {
    return this.length - this.pos;
  }

  /** The decoded extension, once the END record has been read; null before. */
  get content(): ImageExtension | null {
    return this.result;
  }

  /** Checks the record header in `header` (RECORD_HEADER_SIZE bytes; may be empty when remaining is short). */
  frame(header: Buffer): RecordFrame {
    const at = this.base + this.pos;
    const end = this.base + this.length;
    if (this.remaining < RECORD_HEADER_SIZE) throw new ExtensionFormatError(at, `the extension ends at byte ${end} without an END record`);
    const type = header.readUInt32LE(0);
    const length = header.readUInt32LE(4);
    const padded = align8(length);
    if (padded > this.remaining - RECORD_HEADER_SIZE) {
      throw new ExtensionFormatError(at + 4, `record length ${length} runs past the extension's end at byte ${end}`);
    }
    this.heldBytes += RECORD_HEADER_SIZE + (type === RecordType.SHARED_PAGES ? Math.min(padded, SHARED_PAGES_FIXED_SIZE) : padded);
    if (this.heldBytes > EXTENSION_MAX_SIZE) {
      throw new ExtensionFormatError(at + 4, `the extension's bytes besides shared pages exceed ${EXTENSION_MAX_SIZE}`);
    }
    this.pos += RECORD_HEADER_SIZE + padded;
    return { type, length, at };
  }

  /** The payload and padding of a framed record; a SHARED_PAGES record whole, with its page records. */
  record(frame: RecordFrame, body: Buffer): void {
    const { type, length, at } = frame;
    const padding = body.subarray(length).findIndex((b) => b !== 0);
    if (padding >= 0) throw new ExtensionFormatError(at + RECORD_HEADER_SIZE + length + padding, 'record padding is not zero');
    const r = new RecordView(body.subarray(0, length), at, RECORD_NAMES[type] ?? `type ${type}`);
    const found = this.found;
    const once = <K extends keyof ImageExtension>(key: K, read: () => ImageExtension[K]): void => {
      if (found[key] !== undefined) throw new ExtensionFormatError(at, `a second ${r.name} record`);
      found[key] = read();
    };
    switch (type) {
      case RecordType.END:
        r.expectLength(0);
        if (this.remaining !== 0) {
          throw new ExtensionFormatError(at, `END record at byte ${at}, but the extension's length says it ends at byte ${this.base + this.length}`);
        }
        checkSeccompFilterIndices(this.threadParts, this.seccompFilters.length);
        attachParts(this.threads, this.threadParts, 'thread', (t) => t.tid);
        if (this.seccompFilters.length > 0) found.seccompFilters = this.seccompFilters;
        if (this.mappedContents.length > 0) found.mappedContents = this.mappedContents;
        attachParts(this.fds, this.fdParts, 'fd', (f) => f.fd);
        checkFdParts(this.fdParts, this.fds);
        if (this.posixTimersRecord) checkPosixTimerThreads(this.posixTimersRecord, found.posixTimers!, this.threads);
        this.result = complete({ ...found, threads: this.threads, files: this.files, fds: this.fds, ...this.sharedPages.contents() }, at);
        break;
      case RecordType.EXE: once('exe', () => r.text(0, 'path')); break;
      case RecordType.CWD: once('cwd', () => r.text(0, 'path')); break;
      case RecordType.BRK: once('brk', () => { r.expectLength(8); return r.number(0, 'brk'); }); break;
      case RecordType.AUXV: once('auxv', () => readAuxv(r)); break;
      case RecordType.SIGACTIONS: once('sigactions', () => readSigactions(r)); break;
      case RecordType.THREAD: {
        const thread = readThread(r);
        if (this.threads.some((t) => t.tid === thread.tid)) r.fail(0, `a second thread ${thread.tid}`);
        this.threads.push(thread);
        break;
      }
      case RecordType.MAPPED_FILE:
        this.files.push(readMappedFile(r, this.files.length > 0 ? this.files[this.files.length - 1].end : 0));
        break;
      case RecordType.FD:
        this.fds.push(readFd(r, this.fds.length > 0 ? this.fds[this.fds.length - 1].fd : -1));
        break;
      case RecordType.THREAD_FUTEX:
        this.threadParts.push(readThreadFutex(r));
        break;
      case RecordType.THREAD_RSEQ:
        this.threadParts.push(readThreadRseq(r));
        break;
      case RecordType.THREAD_SIGALTSTACK:
        this.threadParts.push(readThreadSigaltstack(r));
        break;
      case RecordType.THREAD_IDENTITY:
        this.threadParts.push(readThreadIdentity(r));
        break;
      case RecordType.SECCOMP_FILTER:
        this.seccompFilters.push(readSeccompFilter(r, this.seccompFilters.length));
        break;
      case RecordType.THREAD_SECCOMP:
        this.threadParts.push(readThreadSeccomp(r));
        break;
      case RecordType.THREAD_SCHEDULING:
        this.threadParts.push(readThreadScheduling(r));
        break;
      case RecordType.PROCESS_SETTINGS: once('settings', () => readProcessSettings(r)); break;
      case RecordType.PENDING_SIGNALS: {
        const { tid, signals } = readPendingSignals(r);
        if (tid === 0) once('sharedPendingSignals', () => signals);
        else this.threadParts.push({ key: tid, record: r, values: { pendingSignals: signals } });
        break;
      }
      case RecordType.UMASK: once('umask', () => readUmask(r)); break;
      case RecordType.RLIMITS: once('rlimits', () => readRlimits(r)); break;
      case RecordType.ITIMERS: once('itimers', () => readItimers(r)); break;
      case RecordType.POSIX_TIMERS:
        once('posixTimers', () => readPosixTimers(r));
        this.posixTimersRecord = r;
        break;
      case RecordType.SHARED_PAGES: {
        const count = this.sharedPages.begin(frame, r.payload.subarray(0, SHARED_PAGES_FIXED_SIZE)).count;
        for (let i = 0; i < count; i++) {
          const pos = SHARED_PAGES_FIXED_SIZE + i * PAGE_RECORD_SIZE;
          this.sharedPages.page(r.payload, pos, r.offsetOf(pos));
        }
        break;
      }
      case RecordType.EVENTFD: this.fdParts.push(readEventFd(r)); break;
      case RecordType.EPOLL: this.fdParts.push(readEpoll(r)); break;
      case RecordType.TIMERFD: this.fdParts.push(readTimerFd(r)); break;
      case RecordType.SIGNALFD: this.fdParts.push(readSignalFd(r)); break;
      case RecordType.USERFAULTFD: this.fdParts.push(readUserfaultfd(r)); break;
      case RecordType.PIPE_DATA: this.fdParts.push(readPipeData(r)); break;
      case RecordType.UNIX_PEER: this.fdParts.push(readUnixPeer(r)); break;
      case RecordType.BOUND_SOCKET: this.fdParts.push(readBoundSocket(r)); break;
      case RecordType.SOCKET_OPTIONS: this.fdParts.push(readSocketOptions(r)); break;
      case RecordType.INOTIFY: this.fdParts.push(readInotify(r)); break;
      case RecordType.FILE_CONTENT: this.fdParts.push(readFileContent(r)); break;
      case RecordType.SOCKET_DATA: this.fdParts.push(readSocketData(r)); break;
      case RecordType.SHARED_FD: this.fdParts.push(readSharedFd(r)); break;
      case RecordType.CONNECTED_SOCKET: this.fdParts.push(readConnectedSocket(r)); break;
      case RecordType.NETLINK_SOCKET: this.fdParts.push(readNetlinkSocket(r)); break;
      case RecordType.UNBOUND_SOCKET: this.fdParts.push(readUnboundSocket(r)); break;
      case RecordType.TERMINAL: this.fdParts.push(readTerminal(r)); break;
      case RecordType.FILE_STATE: this.fdParts.push(readFileState(r)); break;
      case RecordType.CLOCKS: once('clocks', () => {
        r.expectLength(CLOCKS_SIZE);
        const [monotonic, boottime] = readTimeSpecs(r, 0, 2, 'clock');
        return { monotonic, boottime };
      }); break;
      case RecordType.FILE_LOCKS: this.fdParts.push(readFileLocks(r)); break;
      case RecordType.VMA_FLAGS: once('vmaFlags', () => readVmaFlags(r)); break;
      case RecordType.STOPPED: once('stopped', () => { r.expectLength(0); return true as const; }); break;
      case RecordType.CHILDREN: once('children', () => readChildren(r)); break;
      case RecordType.GUARD_PAGES: once('guardPages', () => readGuardPages(r)); break;
      case RecordType.MAPPED_CONTENT: {
        const content = readMappedContent(r);
        if (this.mappedContents.some((c) => c.dev === content.dev && c.inode === content.inode)) r.fail(0, `a second record of file ${content.dev}:${content.inode}`);
        this.mappedContents.push(content);
        break;
      }
      // Any other type is a later version's record: skipped.
    }
  }
}

/** A SHARED_PAGES record's fixed part: the VMA and how many page records follow. */
export interface SharedPagesHead {
  start: number;
  end: number;
  count: number;
}

/**
 * The checks of SHARED_PAGES records, which a streaming reader feeds page by page: each VMA
 * page-aligned and above the previous record's (or the same VMA again, continuing it), its page
 * records strictly ascending across the records of the VMA, page-aligned and inside it.
 */
export class SharedPagesDecoder {
  private readonly memory: { start: number; end: number; pages: PageIndexBuilder }[] = [];
  private previousPage = -1;

  /** Checks the fixed part (fixed: its SHARED_PAGES_FIXED_SIZE bytes, or fewer when the record is shorter). */
  begin(frame: RecordFrame, fixed: Buffer): SharedPagesHead {
    const r = new RecordView(fixed, frame.at, RECORD_NAMES[RecordType.SHARED_PAGES]);
    if (frame.length < SHARED_PAGES_FIXED_SIZE) r.failLength(`length ${frame.length}, expected at least ${SHARED_PAGES_FIXED_SIZE}`);
    const start = r.number(0, 'start');
    const end = r.number(8, 'end');
    const count = fixed.readUInt32LE(16);
    if (start % PAGE_SIZE !== 0) r.fail(0, `start ${hex(start)} is not page-aligned`);
    if (end % PAGE_SIZE !== 0) r.fail(8, `end ${hex(end)} is not page-aligned`);
    if (end <= start) r.fail(8, `end ${hex(end)} is not above start ${hex(start)}`);
    if (fixed.readUInt32LE(20) !== 0) r.fail(20, 'pad is not 0');
    if (frame.length !== SHARED_PAGES_FIXED_SIZE + count * PAGE_RECORD_SIZE) {
      r.failLength(`length ${frame.length} does not hold ${count} page records (expected ${SHARED_PAGES_FIXED_SIZE + count * PAGE_RECORD_SIZE})`);
    }
    const last = this.memory[this.memory.length - 1];
    if (last === undefined || last.start !== start || last.end !== end) {
      if (last !== undefined && start < last.end) r.fail(0, `start ${hex(start)} is below the previous shared memory's end ${hex(last.end)}`);
      this.memory.push({ start, end, pages: new PageIndexBuilder() });
    }
    return { start, end, count };
  }

  /** Checks the page record at buf[pos] (image offset at) of the record begun last; returns its address. */
  page(buf: Buffer, pos: number, at: number): number {
    const { start, end, pages } = this.memory[this.memory.length - 1];
    const low = buf.readUInt32LE(pos);
    const high = buf.readUInt32LE(pos + 4);
    // Above 2^53 an address is no exact number, but it is above every end too.
    const vaddr = fromWords(low, high);
    const name = hex((BigInt(high) << 32n) | BigInt(low));
    if (low % PAGE_SIZE !== 0) throw new ExtensionFormatError(at, `SHARED_PAGES record: page ${name} is not page-aligned`);
    if (vaddr <= this.previousPage) {
      throw new ExtensionFormatError(at, `SHARED_PAGES record: page ${name} is not above the previous one ${hex(this.previousPage)}`);
    }
    if (vaddr < start || vaddr >= end) {
      throw new ExtensionFormatError(at, `SHARED_PAGES record: page ${name} is outside its shared memory ${hex(start)}-${hex(end)}`);
    }
    this.previousPage = vaddr;
    pages.add(vaddr, vaddr + PAGE_SIZE);
    return vaddr;
  }

  /** What the records said, for the decoded extension: nothing when there were none. */
  contents(): Pick<ImageExtension, 'sharedMemory'> {
    if (this.memory.length === 0) return {};
    return { sharedMemory: this.memory.map(({ start, end, pages }) => ({ start, end, pages: pages.build() })) };
  }
}

/**
 * Decodes and checks an extension: `buf` holds exactly its bytes, which start at image offset
 * `base`. Throws ExtensionFormatError at the first problem.
 */
export function decodeExtension(buf: Buffer, base = 0): ImageExtension {
  const { length } = decodeExtensionHeader(buf, base);
  if (buf.length < length) {
    throw new ExtensionFormatError(base + buf.length, `image ends inside the extension (its header says ${length} bytes, got ${buf.length})`);
  }
  if (buf.length > length) {
    throw new ExtensionFormatError(base + length, `${buf.length - length} bytes follow the extension's end`);
  }
  const decoder = new ExtensionDecoder(base, length);
  while (decoder.content === null) {
    const pos = length - decoder.remaining;
    const frame = decoder.frame(decoder.remaining < RECORD_HEADER_SIZE ? EMPTY : buf.subarray(pos, pos + RECORD_HEADER_SIZE));
    decoder.record(frame, buf.subarray(pos + RECORD_HEADER_SIZE, length - decoder.remaining));
  }
  return decoder.content;
}

const REQUIRED: readonly [keyof ImageExtension, number][] = [
  ['exe', RecordType.EXE], ['cwd', RecordType.CWD], ['brk', RecordType.BRK], ['auxv', RecordType.AUXV],
  ['sigactions', RecordType.SIGACTIONS],
];

/** Checks that every required record was present; endAt is the END record's image offset. */
function complete(found: Partial<ImageExtension>, endAt: number): ImageExtension {
  for (const [key, type] of REQUIRED) {
    if (found[key] === undefined) throw new ExtensionFormatError(endAt, `the extension has no ${RECORD_NAMES[type]} record`);
  }
  if (found.threads!.length === 0) throw new ExtensionFormatError(endAt, 'the extension has no THREAD record');
  return found as ImageExtension;
}
