// The kernel's numbers that more than one module of imgfs uses: the x86_64 system call numbers it
// makes itself (libc's syscall()) or has a tracee make (injected calls, the restore stub's), and
// flags, requests and struct sizes of those calls. Written once, here.

export const SYS = {
  write: 1, close: 3, lseek: 8, mmap: 9, mprotect: 10, munmap: 11, brk: 12, rt_sigaction: 13,
  ioctl: 16, mremap: 25, madvise: 28, getitimer: 36, setitimer: 38, socket: 41, connect: 42, shutdown: 48, bind: 49,
  listen: 50, socketpair: 53, setsockopt: 54, clone: 56, exit: 60, wait4: 61, fcntl: 72, flock: 73, ftruncate: 77,
  chdir: 80, umask: 95, setpgid: 109, setsid: 112, setgroups: 116, setresuid: 117, setresgid: 119, setfsuid: 122,
  setfsgid: 123, capset: 126, rt_sigqueueinfo: 129, sigaltstack: 131, personality: 135, prctl: 157,
  arch_prctl: 158, sched_setaffinity: 203, sched_getaffinity: 204, set_tid_address: 218,
  restart_syscall: 219, timer_create: 222, timer_settime: 223, timer_gettime: 224, epoll_ctl: 233,
  ioprio_set: 251, ioprio_get: 252, inotify_add_watch: 254, inotify_rm_watch: 255, openat: 257,
  unshare: 272, set_robust_list: 273, get_robust_list: 274, timerfd_create: 283,
  timerfd_settime: 286, signalfd4: 289, eventfd2: 290, epoll_create1: 291, dup3: 292, pipe2: 293,
  inotify_init1: 294, rt_tgsigqueueinfo: 297, open_by_handle_at: 304, kcmp: 312,
  sched_setattr: 314, sched_getattr: 315, seccomp: 317, memfd_create: 319, userfaultfd: 323,
  mlock2: 325, rseq: 334, pidfd_open: 434, clone3: 435, close_range: 436, pidfd_getfd: 438,
  memfd_secret: 447, mseal: 462,
} as const;

/** "mmap (9)": a syscall number as a person reads it. */
export function syscallName(nr: number): string {
  const name = Object.entries(SYS).find(([, value]) => value === nr)?.[0];
  return name === undefined ? `syscall ${nr}` : `${name} (${nr})`;
}

/** prctl(2): the task's dumpable mode; its name (comm); its securebits. */
export const PR_GET_DUMPABLE = 3;
export const PR_SET_NAME = 15;
export const PR_GET_SECUREBITS = 27;
/** clone(2): share the memory; share the descriptor table. */
export const CLONE_VM = 0x100;
export const CLONE_FILES = 0x400;
/** fcntl(2): a descriptor's status flags (O_NONBLOCK...). */
export const F_SETFL = 4;
/** fcntl(2) on a pipe: its capacity. */
export const F_SETPIPE_SZ = 1031;
export const F_GETPIPE_SZ = 1032;
/** ioctl(2): the bytes waiting to be read. */
export const FIONREAD = 0x541b;
/** open(2): a handle on the file itself, opened for nothing else. */
export const O_PATH = 0o10000000;
/** open(2): the access mode bits of the flags, a mask Node's fs.constants does not carry. */
export const O_ACCMODE = 3;
/** socket(2): the new descriptor closes on exec. */
export const SOCK_CLOEXEC = 0o2000000;
export const AT_FDCWD = -100;
export const SEEK_SET = 0;
export const IPPROTO_IPV6 = 41;
export const IPV6_V6ONLY = 26;
/** seccomp(2) modes, as /proc/<pid>/status shows them. */
export const SECCOMP_MODE_STRICT = 1;
export const SECCOMP_MODE_FILTER = 2;
/** struct sock_filter: u16 code, u8 jt, u8 jf, u32 k; a seccomp filter is an array of them. */
export const BPF_INSTRUCTION_SIZE = 8;
/** siginfo_t as the kernel copies it out (PTRACE_PEEKSIGINFO, PTRACE_GETSIGINFO) and in (rt_sigqueueinfo). */
export const SIGINFO_SIZE = 128;

/** The kernel's struct termios (TCGETS, TCSETS): four u32 flag words, c_line, c_cc[19]. */
export const TERMIOS_SIZE = 36;
