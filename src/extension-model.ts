// What a faithful restore needs beyond the v0 image: the extension that follows the v0
// terminator (specified byte for byte in docs/format.md, encoded by src/extension.ts).

import { constants as fsConstants } from 'node:fs';
import type { UserDesc, UserRegs } from './model.js';
import type { PageIndex } from './pageindex.js';
import { O_ACCMODE, TERMIOS_SIZE } from './ptrace/syscalls.js';

export { TERMIOS_SIZE };

export interface ImageExtension {
  /** /proc/<pid>/exe's target at dump time. */
  exe: string;
  cwd: string;
  /** The exact brk (v0's mm.brk carries it too when it could be read; this one always does). */
  brk: number;
  /** /proc/<pid>/auxv, up to and including AT_NULL. */
  auxv: Buffer;
  /** Leader first. */
  threads: ExtensionThread[];
  /** One per file-backed VMA, in address order. */
  files: ExtensionMappedFile[];
  /** Signal dispositions 1..64 (index 0 is signal 1). */
  sigactions: ExtensionSigaction[];
  fds: ExtensionFd[];
  /**
   * Signals sent to the process and not yet delivered (its shared queue), oldest first: each a
   * 128-byte siginfo_t. Absent in older images.
   */
  sharedPendingSignals?: Buffer[];
  /** The file mode creation mask (umask). Absent in older images. */
  umask?: number;
  /** Resource limits indexed by resource number (RLIMIT_CPU 0 .. RLIMIT_RTTIME 15). Absent in older images. */
  rlimits?: ResourceLimit[];
  /** The interval timers ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF, in that order. Absent in older images. */
  itimers?: IntervalTimer[];
  /** The POSIX timers (timer_create), by ascending id. Absent in older images and where /proc/<pid>/timers is missing. */
  posixTimers?: PosixTimer[];
  /**
   * The contents of each shared VMA without a file to reopen (shared anonymous memory, SysV shm,
   * memfd, deleted files), ascending. Absent in older images and when the process has none.
   */
  sharedMemory?: SharedMemoryContents[];
  /**
   * Every VMA's madvise flags and mlock, in address order. Absent in older images. A dump defers
   * them: only smaps shows them, and it is read only when the record itself is read.
   */
  vmaFlags?: VmaFlags[] | DeferredVmaFlags;
  /** The task was stopped (SIGSTOP, ^Z) when dumped: it is restored stopped. Absent: it ran, or an older image. */
  stopped?: true;
  /** The process's child processes at the dump (a restore does not bring them back: it says so). */
  children?: number[];
  /** The runs of guard pages (MADV_GUARD_INSTALL), as [start, end) pairs, ascending. Absent: none, or an older image. */
  guardPages?: Array<[number, number]>;
  /**
   * The bytes of the files the process maps privately that no path leads to any more (a program
   * or library deleted or replaced by an upgrade since it was started). Absent: none, or an older image.
   */
  mappedContents?: MappedContent[];
  /**
   * The distinct seccomp filters of the process's threads, which THREAD seccomp states name by
   * index (threads usually share theirs). Absent: no thread had one, or an older image.
   */
  seccompFilters?: SeccompFilter[];
  /** Absent in older images. */
  settings?: ProcessSettings;
  /** The process's CLOCK_MONOTONIC and CLOCK_BOOTTIME at the dump. Absent in older images. */
  clocks?: { monotonic: TimeSpec; boottime: TimeSpec };
}

/** A VMA's madvise flags and mlock: VMA_FLAG_* bits (extension.ts), by the VMA's start. */
export interface VmaFlags {
  start: number;
  flags: number;
}

/** VMA flags known by number at the snapshot, read when the record's bytes are wanted. */
export interface DeferredVmaFlags {
  count: number;
  read(): VmaFlags[];
}

/** The entries, read now if they were deferred. */
export function vmaFlagEntries(vmaFlags: VmaFlags[] | DeferredVmaFlags): VmaFlags[] {
  return Array.isArray(vmaFlags) ? vmaFlags : vmaFlags.read();
}

/**
 * A shared VMA whose pages the image carries (SHARED_PAGES records): which pages, not their bytes,
 * which the dump reads from the target and a restore streams from the image.
 */
export interface SharedMemoryContents {
  start: number;
  end: number;
  /** The pages that hold data, ascending, inside [start, end). */
  pages: PageIndex;
}

/** struct rlimit; RLIM_INFINITY is 2^64 - 1. */
export interface ResourceLimit {
  soft: bigint;
  hard: bigint;
}

/** struct timeval. */
export interface TimeValue {
  sec: number;
  usec: number;
}

/** struct itimerval: the reload interval and the time left until the next expiry (0: disarmed). */
export interface IntervalTimer {
  interval: TimeValue;
  value: TimeValue;
}

const ITIMER_REAL = 0;
const isZeroTime = ({ sec, usec }: TimeValue): boolean => sec === 0 && usec === 0;

/**
 * The time until an interval timer (ITIMERS' which-th) next expires; zero: disarmed. A periodic
 * ITIMER_REAL that has just expired reads 0 left until its SIGALRM is taken, which is when the
 * kernel arms it again (the signal is pending in the image): its interval, then. The CPU-time
 * ones are armed again at their expiry itself.
 */
export function timeToExpiry({ interval, value }: IntervalTimer, which: number): TimeValue {
  return which === ITIMER_REAL && isZeroTime(value) ? interval : value;
}

export const isTimerArmed = (timer: IntervalTimer, which: number): boolean => !isZeroTime(timeToExpiry(timer, which));

/** struct timespec. */
export interface TimeSpec {
  sec: number;
  nsec: number;
}

/** A POSIX timer: how timer_create made it, and what timer_gettime told at the dump. */
export interface PosixTimer {
  /** The kernel's timer id: the timer_t the program holds. */
  id: number;
  /**
   * The clockid_t as the kernel keeps it: CLOCK_REALTIME 0, CLOCK_MONOTONIC 1, ...; negative for
   * a CPU-time clock naming a pid or tid (0: the creating process or thread, as glibc passes
   * CLOCK_PROCESS_CPUTIME_ID -6 and CLOCK_THREAD_CPUTIME_ID -2).
   */
  clock: number;
  /** sigev_notify: SIGEV_SIGNAL 0, SIGEV_NONE 1, SIGEV_THREAD 2, SIGEV_THREAD_ID 4. */
  notify: number;
  /** The thread SIGEV_THREAD_ID notifies (its dumped tid); 0 for any other notification. */
  tid: number;
  /** sigev_signo. */
  signal: number;
  /** sigev_value: what the signal's si_value carries. */
  sigevValue: bigint;
  /** The reload interval. */
  interval: TimeSpec;
  /** The time left until the next expiry; 0: disarmed. */
  value: TimeSpec;
}

export interface ExtensionThread {
  tid: number;
  regs: UserRegs;
  /** GDT TLS entries 12..14. */
  tls: UserDesc[];
  /** Blocked signals. */
  sigmask: bigint;
  /** FXSAVE area (512 bytes). */
  fpregs: Buffer;
  /** XSAVE area, as PTRACE_GETREGSET NT_X86_XSTATE returns it. */
  xstate: Buffer;
  /**
   * The word the kernel zeroes and futex-wakes when the thread exits (set_tid_address, clone's
   * CLONE_CHILD_CLEARTID): what wakes a pthread_join. 0: none. Absent in older images.
   */
  clearChildTid?: number;
  /** The robust futex list the kernel walks when the thread exits (set_robust_list). Absent in older images. */
  robustList?: RobustList;
  /** The thread's restartable-sequence registration (rseq(2)). Absent in older images. */
  rseq?: RseqArea;
  /** The thread's alternate signal stack (sigaltstack). Absent in older images. */
  sigaltstack?: SignalStack;
  /** Signals sent to this thread and not yet delivered, oldest first: 128-byte siginfo_t each. Absent in older images. */
  pendingSignals?: Buffer[];
  /** Its name and credentials (both are per thread in Linux). Absent in older images. */
  identity?: ThreadIdentity;
  /** Its seccomp mode. Absent: none (or an older image). */
  seccomp?: ThreadSeccomp;
  /** How it is scheduled. Absent in older images. */
  scheduling?: ThreadScheduling;
}

/** A thread's scheduling: struct sched_attr's fields, its CPU affinity, I/O priority and timer slack. */
export interface ThreadScheduling {
  /** SCHED_OTHER 0, SCHED_FIFO 1, SCHED_RR 2, SCHED_BATCH 3, SCHED_IDLE 5, SCHED_DEADLINE 6. */
  policy: number;
  /** sched_flags: SCHED_FLAG_RESET_ON_FORK 1 and SCHED_DEADLINE's. */
  flags: bigint;
  nice: number;
  /** The real-time priority (SCHED_FIFO, SCHED_RR), else 0. */
  priority: number;
  /** SCHED_DEADLINE's runtime, deadline and period in nanoseconds, else 0. */
  runtime: bigint;
  deadline: bigint;
  period: bigint;
  /** Utilization clamps, 0..1024. */
  utilMin: number;
  utilMax: number;
  /** The CPUs it may run on: bit n is CPU n (sched_getaffinity's bytes). */
  cpus: Buffer;
  /** ioprio_get: class << 13 | level; 0 when none was set (it follows the nice value). */
  ioprio: number;
  timerSlackNs: bigint;
}

/**
 * The longest CPU mask (ThreadScheduling's cpus) a dump reads and a reader takes: room for 8192
 * CPUs, where sched_getaffinity answers as many whole longs as the kernel has CPUs for.
 */
export const CPU_MASK_MAX = 1024;

const POLICY_NAMES = new Map([[0, 'SCHED_OTHER'], [1, 'SCHED_FIFO'], [2, 'SCHED_RR'], [3, 'SCHED_BATCH'], [5, 'SCHED_IDLE'], [6, 'SCHED_DEADLINE']]);

export const policyName = (policy: number): string => POLICY_NAMES.get(policy) ?? `policy ${policy}`;

/** The CPUs of an affinity mask as taskset -c lists them: "0-3,6". */
export function cpuList(mask: Buffer): string {
  const ranges: string[] = [];
  for (let cpu = 0; cpu < mask.length * 8; cpu++) {
    if (!(mask[cpu >> 3] & (1 << (cpu & 7)))) continue;
    let last = cpu;
    while (last + 1 < mask.length * 8 && mask[(last + 1) >> 3] & (1 << ((last + 1) & 7))) last++;
    ranges.push(last === cpu ? String(cpu) : `${cpu}-${last}`);
    cpu = last;
  }
  return ranges.join(',') || 'none';
}

/** Process-wide settings: its OOM killer adjustment and its personality(2). */
export interface ProcessSettings {
  /** /proc/<pid>/oom_score_adj, -1000..1000. */
  oomScoreAdj: number;
  /** /proc/<pid>/personality. */
  personality: number;
}

/** A classic BPF seccomp program as the kernel holds it. */
export interface SeccompFilter {
  /** struct sock_filter instructions, 8 bytes each (u16 code, u8 jt, u8 jf, u32 k). */
  program: Buffer;
  /** Installed with SECCOMP_FILTER_FLAG_LOG. */
  log: boolean;
}

/** A thread's seccomp mode: strict, or filters (indices into seccompFilters, oldest first). */
export type ThreadSeccomp = { mode: 'strict' } | { mode: 'filter'; filters: number[] };

/** A thread's credentials, as /proc/<pid>/task/<tid>/status shows them. */
export interface Credentials {
  /** Real, effective, saved and file-system uid; the same for gids. */
  uids: [number, number, number, number];
  gids: [number, number, number, number];
  /** Supplementary groups. */
  groups: number[];
  caps: { inheritable: bigint; permitted: bigint; effective: bigint; bounding: bigint; ambient: bigint };
  noNewPrivs: boolean;
}

/**
 * Who a thread is: its name (comm) and credentials, with the securebits (prctl
 * PR_GET_SECUREBITS, asked of the thread).
 */
export interface ThreadIdentity extends Credentials {
  /** comm: 1..15 bytes, as the kernel keeps them (not always UTF-8). */
  name: Buffer;
  securebits: number;
}

/** stack_t as sigaltstack(2) reports it. */
export interface SignalStack {
  sp: number;
  /** SS_DISABLE (2): none; SS_ONSTACK (1): the thread was running on it; SS_AUTODISARM (1 << 31). */
  flags: number;
  size: number;
}

/** rseq(2)'s arguments: the area's address (0: none registered), its length and the abort signature. */
export interface RseqArea {
  address: number;
  length: number;
  signature: number;
}

/** set_robust_list's arguments: the list head's address (0: none) and its size. */
export interface RobustList {
  head: number;
  len: number;
}

/** The file behind a file-backed VMA, with what tells whether it changed since the dump. */
export interface ExtensionMappedFile {
  start: number;
  end: number;
  path: string;
  dev: bigint;
  inode: bigint;
  size: number;
  mtimeNs: bigint;
}

/** struct sigaction's handler values that are no handler. */
export const SIG_DFL = 0n;
export const SIG_IGN = 1n;

export interface ExtensionSigaction {
  handler: bigint;
  flags: bigint;
  restorer: bigint;
  mask: bigint;
}

export type FdKind = 'file' | 'pipe' | 'socket' | 'tty' | 'other';

export interface ExtensionFd {
  fd: number;
  kind: FdKind;
  /** open(2) flags from /proc/<pid>/fdinfo. */
  flags: number;
  /** File position from fdinfo. */
  offset: number;
  /** readlink of /proc/<pid>/fd/<fd>: a path, or e.g. "pipe:[1234]". */
  target: string;
  /** What an anon-inode descriptor holds, for a restore to make it again (its own record). Absent in older images. */
  eventfd?: EventFdState;
  epoll?: EpollTarget[];
  timerfd?: TimerFdState;
  signalfd?: SignalFdState;
  userfaultfd?: UserfaultfdState;
  /** On the read end of a pipe whose two ends are both in the process: what the pipe held. */
  pipeData?: PipeData;
  /** On a Unix socket whose peer is open in the process too: the pair's type and the peer. */
  unixPeer?: UnixPeer;
  /** On a socket that listens, or a datagram socket bound and not connected: what binds it again. */
  boundSocket?: BoundSocket;
  /** On a socket connected to a peer outside the process: what it was connected to. */
  connectedSocket?: ConnectedSocket;
  /** On a netlink socket: its kind and the multicast groups it listens to. */
  netlink?: NetlinkSocket;
  /** On a socket neither bound to an address nor connected (socket(2) and no more): its kind. */
  unboundSocket?: UnboundSocket;
  /**
   * Of a bound or unbound socket, or a connected datagram socket (what a restore makes of its
   * kind): the options of src/socketoptions.ts whose values differ from those of a new socket of
   * its kind, as getsockopt answers them.
   */
  socketOptions?: SocketOption[];
  /**
   * Of a file no path leads to any more (deleted, or a memfd): its bytes, on the first descriptor
   * of it (by target), where the dump carries them.
   */
  content?: FileContent;
  /**
   * Of a socket whose peer is open in the process too (a socket pair): what waits to be read from
   * it, on the first descriptor of it: the bytes of a stream socket as one, each message of a
   * datagram or seqpacket socket.
   */
  queued?: Buffer[];
  /** Of an inotify instance: its watches, ascending by watch descriptor. */
  inotify?: InotifyWatch[];
  /** The file locks the process held through this descriptor (fdinfo `lock:` lines). */
  locks?: FileLock[];
  /**
   * The lowest descriptor whose open file description this one is too (a dup: `2>&1`, dup2, one
   * inherited twice): offset and status flags are one for both. Absent: its own, or one of
   * pipe or socket, whose ends are told apart by their inode anyway.
   */
  sharesWith?: number;
  /** Of a terminal (a pty's slave side, a console, a serial line; not a pty master): its state at the dump. */
  terminal?: TerminalState;
  /** Of a regular file: what it was at the dump, for a restore to tell whether its path still leads to it. */
  fileState?: OpenFileState;
}

/** A regular file's device and inode (statx), size and mtime in nanoseconds since the epoch. */
export interface OpenFileState {
  dev: bigint;
  inode: bigint;
  size: number;
  mtimeNs: bigint;
}

/**
 * A terminal's modes and size at the dump, and what it was to the process. A restore in the
 * foreground gives the restorer's terminal the modes of the process's controlling terminal when
 * the process was its foreground job: an editor or a REPL that switched its terminal to raw mode
 * finds it in raw mode again.
 */
export interface TerminalState {
  /** struct termios as TCGETS gives it: c_iflag, c_oflag, c_cflag, c_lflag (u32 each), c_line, c_cc[19]. */
  termios: Buffer;
  /** struct winsize (TIOCGWINSZ). */
  rows: number;
  columns: number;
  xpixels: number;
  ypixels: number;
  /** It was the process's controlling terminal (/proc/<pid>/stat tty_nr). */
  controlling: boolean;
  /** The process's group was its foreground process group (stat tpgid = pgrp); only of a controlling terminal. */
  foreground: boolean;
}

/** flock(2), a POSIX record lock (fcntl F_SETLK, lockf), or an open file description's (F_OFD_SETLK). */
export type FileLockKind = 'flock' | 'posix' | 'ofd';

/** A lock held at the dump: shared (read) or exclusive (write), on bytes [start, end]; end null: to EOF. */
export interface FileLock {
  kind: FileLockKind;
  write: boolean;
  start: number;
  end: number | null;
}

/** A Unix socket's type (SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5) and its peer's inode. */
export interface UnixPeer {
  type: number;
  peer: number;
}

/** Socket numbers as Linux has them, for BoundSocket. */
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_SEQPACKET = 5;
export const SOCK_RAW = 3;
export const AF_NETLINK = 16;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const SOL_SOCKET = 1;
export const SOL_NETLINK = 270;
export const SO_REUSEADDR = 2;
export const SO_REUSEPORT = 15;
/** sk_state values (include/net/tcp_states.h), which UDP and Unix sockets use too. */
export const TCP_ESTABLISHED = 1;
export const TCP_CLOSE = 7;
export const TCP_LISTEN = 10;
export const TCP_CLOSING = 11;

/**
 * A socket a restore can make again: a stream listener (TCP, Unix stream or seqpacket) or a
 * datagram socket bound to an address and connected to none (UDP, Unix datagram).
 */
export interface BoundSocket {
  /** AF_UNIX 1, AF_INET 2, AF_INET6 10. */
  family: number;
  /** SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5. */
  type: number;
  /** 0, IPPROTO_TCP 6 or IPPROTO_UDP 17. */
  protocol: number;
  /** listen(2) was called; backlog is its queue length (sk_max_ack_backlog). */
  listening: boolean;
  backlog: number;
  /** IPV6_V6ONLY (AF_INET6 only). */
  v6only: boolean;
  /** SO_REUSEPORT (AF_INET and AF_INET6 only): other sockets may bind the same address, as a group. */
  reuseport: boolean;
  /** For a Unix socket bound to a path: its socket file's permission bits and owner, which bind does not give. */
  file?: { mode: number; uid: number; gid: number };
  /** The struct sockaddr bind(2) takes: sockaddr_un (family, then sun_path as the kernel keeps it), sockaddr_in or sockaddr_in6. */
  address: Buffer;
}

/**
 * A socket connected to a peer outside the process (TCP, UDP, Unix), as sock_diag tells it. The
 * addresses are struct sockaddrs of its family; an empty one: none (an unnamed Unix socket).
 */
export interface ConnectedSocket {
  /** AF_UNIX 1, AF_INET 2, AF_INET6 10. */
  family: number;
  /** SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5. */
  type: number;
  /** 0, IPPROTO_TCP 6 or IPPROTO_UDP 17. */
  protocol: number;
  /** sk_state: TCP_ESTABLISHED 1 ... TCP_CLOSING 11, as the kernel numbers them (TCP_LISTEN 10 excepted). */
  state: number;
  local: Buffer;
  peer: Buffer;
}

/** A netlink socket (AF_NETLINK): to the kernel, for its requests and the events of its groups. */
export interface NetlinkSocket {
  /** SOCK_RAW 3 or SOCK_DGRAM 2. */
  type: number;
  /** NETLINK_ROUTE 0, NETLINK_KOBJECT_UEVENT 15, ... (below 32). */
  protocol: number;
  /** The multicast groups it is a member of, ascending, from 1 (RTNLGRP_LINK 1, ...). */
  groups: number[];
}

/**
 * A Unix, IPv4 or IPv6 socket that holds no address yet: a UDP socket a program sends from with
 * sendto later, a socket kept for ioctls (SIOCGIFCONF), one made before a connect. Its kind and the
 * options that decide its later bind are all there is to it.
 */
export interface UnboundSocket {
  /** AF_UNIX 1, AF_INET 2, AF_INET6 10. */
  family: number;
  /** SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_RAW 3, SOCK_SEQPACKET 5. */
  type: number;
  /** 0 for Unix; IPPROTO_TCP 6, IPPROTO_UDP 17, IPPROTO_ICMP 1, ... for IPv4 and IPv6 (below 65536). */
  protocol: number;
  /** SO_REUSEADDR. */
  reuseaddr: boolean;
  /** SO_REUSEPORT (AF_INET and AF_INET6 only). */
  reuseport: boolean;
  /** IPV6_V6ONLY (AF_INET6 only). */
  v6only: boolean;
}

/** "TCP 127.0.0.1:40000 to 127.0.0.1:5432", "Unix datagram (unnamed) to /dev/log", ... */
export function describeConnection(socket: ConnectedSocket): string {
  const { family, type, protocol } = socket;
  const local = describeSocket({ family, type, protocol, address: socket.local });
  return `${local} to ${describeAddress(family, socket.peer)}`;
}

/** A deleted file's or a memfd's bytes and what a new one needs to be like it. */
/** A deleted file the process maps (MAPPED_CONTENT): which one (as its MAPPED_FILE records name it), its mode and bytes. */
export interface MappedContent {
  dev: bigint;
  inode: bigint;
  /** Permission bits. */
  mode: number;
  /** The bytes; a dump reads them when the image's reader reaches them. */
  bytes: Buffer | { length: number; read(): Buffer };
}

export interface FileContent {
  memfd: boolean;
  /** F_GET_SEALS of a memfd (F_SEAL_*); 0 for other files. */
  seals: number;
  /** Permission bits. */
  mode: number;
  /** The bytes; a dump reads them when the image's reader reaches them. */
  bytes: Buffer | { length: number; read(): Buffer };
}

/** One watch of an inotify instance. */
export interface InotifyWatch {
  /** The watch descriptor the program knows it by. */
  wd: number;
  /** The events and flags it was added with (IN_ONESHOT, IN_EXCL_UNLINK among them). */
  mask: number;
  /** The watched inode's number, for people. */
  inode: bigint;
  /** Where the inode was when dumped; null when it could not be found (no CAP_DAC_READ_SEARCH, say). */
  path: string | null;
}

/** A socket option's value, getsockopt's bytes (1..16 of them). */
export interface SocketOption {
  level: number;
  name: number;
  value: Buffer;
}

/** The path of a Unix socket's address (sun_path up to its NUL), or null for an abstract name or another family. */
export function unixSocketPath(address: Buffer): string | null {
  if (address.readUInt16LE(0) !== AF_UNIX || address.length < 3 || address[2] === 0) return null;
  const name = address.subarray(2);
  const end = name.indexOf(0);
  return name.subarray(0, end < 0 ? name.length : end).toString('latin1');
}

/** "TCP 127.0.0.1:8080", "UDP [::1]:53", "Unix stream /run/x.sock", "Unix datagram @name". */
export function describeSocket(socket: Pick<BoundSocket, 'family' | 'type' | 'protocol' | 'address'> & Partial<BoundSocket>): string {
  const { family, address } = socket;
  if (family === AF_UNIX) return `Unix ${SOCKET_TYPE_NAMES.get(socket.type) ?? `type ${socket.type}`} ${describeAddress(family, address)}`;
  const protocol = socket.protocol === IPPROTO_TCP ? 'TCP' : socket.protocol === IPPROTO_UDP ? 'UDP' : `protocol ${socket.protocol}`;
  return `${protocol} ${describeAddress(family, address)}`;
}

/** "127.0.0.1:8080", "[::1]:53", "/run/x.sock", "@name"; "(unnamed)" for a Unix socket without one. */
function describeAddress(family: number, address: Buffer): string {
  if (family === AF_UNIX) {
    if (address.length <= 2) return '(unnamed)';
    return unixSocketPath(address) ?? `@${address.subarray(3).toString('latin1')}`;
  }
  const port = address.readUInt16BE(2);
  if (family === AF_INET) return `${[...address.subarray(4, 8)].join('.')}:${port}`;
  const groups = Array.from({ length: 8 }, (_, i) => address.readUInt16BE(8 + 2 * i).toString(16));
  return `[${compressIpv6(groups)}]:${port}`;
}

const SOCKET_TYPE_NAMES = new Map([[SOCK_STREAM, 'stream'], [SOCK_DGRAM, 'datagram'], [SOCK_SEQPACKET, 'seqpacket']]);

/** "UDP over IPv4", "TCP over IPv6", "Unix datagram", "raw protocol 1 over IPv4". */
export function describeSocketKind({ family, type, protocol }: Pick<UnboundSocket, 'family' | 'type' | 'protocol'>): string {
  const typeName = SOCKET_TYPE_NAMES.get(type) ?? (type === SOCK_RAW ? 'raw' : `type ${type}`);
  if (family === AF_UNIX) return `Unix ${typeName}`;
  const name = protocol === IPPROTO_TCP ? 'TCP' : protocol === IPPROTO_UDP ? 'UDP' : `${typeName} protocol ${protocol}`;
  return `${name} over ${family === AF_INET ? 'IPv4' : family === AF_INET6 ? 'IPv6' : `family ${family}`}`;
}

/** RFC 5952: the longest run of two or more zero groups becomes "::". */
function compressIpv6(groups: string[]): string {
  let best = { at: -1, length: 1 };
  for (let i = 0; i < groups.length;) {
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > best.length) best = { at: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.length).join(':')}`;
}

/** A pipe's capacity (F_GETPIPE_SZ) and the bytes in it, unread at the dump. */
export interface PipeData {
  capacity: number;
  bytes: Buffer;
}

/** "flock write lock", "POSIX read lock on bytes 100-109", ... */
export function describeLock(lock: FileLock): string {
  const kind = lock.kind === 'flock' ? 'flock' : lock.kind === 'posix' ? 'POSIX' : 'OFD';
  const bytes = lock.kind === 'flock' ? '' : ` on bytes ${lock.start}-${lock.end ?? 'EOF'}`;
  return `${kind} ${lock.write ? 'write' : 'read'} lock${bytes}`;
}

/** The recorded descriptors of one pipe whose two ends are both in the process. */
export interface PipeEnds {
  read: ExtensionFd[];
  write: ExtensionFd[];
}

/**
 * The pipes whose read end and write end are both open in the process (self-pipes), by link
 * target. 0, 1 and 2 are left out: a restore gives those the restorer's own.
 */
export function pipesWithBothEnds(fds: readonly ExtensionFd[]): Map<string, PipeEnds> {
  const pipes = new Map<string, PipeEnds>();
  for (const fd of fds) {
    if (fd.kind !== 'pipe' || !fd.target.startsWith('pipe:[') || fd.fd <= 2) continue;
    const ends = pipes.get(fd.target) ?? { read: [], write: [] };
    (isPipeWriteEnd(fd) ? ends.write : ends.read).push(fd);
    pipes.set(fd.target, ends);
  }
  for (const [target, ends] of pipes) if (ends.read.length === 0 || ends.write.length === 0) pipes.delete(target);
  return pipes;
}

/** Whether a pipe's descriptor is its write end (opened O_WRONLY); else its read end. */
export function isPipeWriteEnd(fd: ExtensionFd): boolean {
  return (fd.flags & O_ACCMODE) === fsConstants.O_WRONLY;
}

/** A socket pair both of whose ends are open in the process: each end's descriptors. */
export interface SocketPairEnds {
  type: number;
  ends: [ExtensionFd[], ExtensionFd[]];
}

/**
 * The socket pairs whose two ends are both open in the process (numbers above 2), by the link
 * target of either end (both map to one pair).
 */
export function socketPairsWithBothEnds(fds: readonly ExtensionFd[]): Map<string, SocketPairEnds> {
  const byTarget = new Map<string, ExtensionFd[]>();
  for (const fd of fds) {
    if (!fd.unixPeer || fd.fd <= 2) continue;
    byTarget.set(fd.target, [...(byTarget.get(fd.target) ?? []), fd]);
  }
  const pairs = new Map<string, SocketPairEnds>();
  for (const [target, end] of byTarget) {
    const peerTarget = `socket:[${end[0].unixPeer!.peer}]`;
    const peer = byTarget.get(peerTarget);
    if (pairs.has(target) || peer === undefined || peerTarget === target) continue;
    const pair: SocketPairEnds = { type: end[0].unixPeer!.type, ends: [end, peer] };
    pairs.set(target, pair);
    pairs.set(peerTarget, pair);
  }
  return pairs;
}

/** An eventfd's counter and mode (fdinfo `eventfd-count:`, `eventfd-semaphore:`). */
export interface EventFdState {
  count: bigint;
  semaphore: boolean;
}

/** One descriptor an epoll instance watches (fdinfo `tfd:`, `events:`, `data:`). */
export interface EpollTarget {
  fd: number;
  events: number;
  data: bigint;
}

/** A timerfd (fdinfo `clockid:`, `ticks:`, `settime flags:`, `it_value:`, `it_interval:`). */
export interface TimerFdState {
  clock: number;
  /** Expirations not yet read. */
  ticks: bigint;
  /** timerfd_settime's flags (TFD_TIMER_ABSTIME 1, TFD_TIMER_CANCEL_ON_SET 2). */
  settimeFlags: number;
  interval: TimeSpec;
  /** The time left until the next expiry; 0: disarmed. */
  value: TimeSpec;
}

/** A userfaultfd's handshake (fdinfo `API:`): the features its UFFDIO_API asked for. */
export interface UserfaultfdState {
  /** null: no UFFDIO_API yet (the descriptor takes no other ioctl until it has one). */
  features: bigint | null;
}

/** A signalfd's signal set (fdinfo `sigmask:`). */
export interface SignalFdState {
  mask: bigint;
}
