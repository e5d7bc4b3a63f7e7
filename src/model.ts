// The snapshot model every layout is computed from. Addresses and sizes are JS numbers:
// x86_64 user addresses stay below 2^47, far inside the 2^53 that doubles hold exactly.
// Register values are full 64-bit words, hence bigint.

import type { ImageExtension } from './extension-model.js';
import type { PageIndex } from './pageindex.js';

export const PAGE_SIZE = 4096;

/** The fields of struct user_regs_struct (<sys/user.h>) in their order, as PTRACE_GETREGS, the
 *  ELF core's elf_gregset_t and the image extension lay them out. */
export const USER_REGS_ORDER = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi',
  'rdi', 'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const satisfies readonly (keyof UserRegs)[];

/** struct user_regs_struct from <sys/user.h>, in PTRACE_GETREGS order. */
export interface UserRegs {
  r15: bigint; r14: bigint; r13: bigint; r12: bigint; rbp: bigint; rbx: bigint;
  r11: bigint; r10: bigint; r9: bigint; r8: bigint; rax: bigint; rcx: bigint;
  rdx: bigint; rsi: bigint; rdi: bigint; orig_rax: bigint; rip: bigint; cs: bigint;
  eflags: bigint; rsp: bigint; ss: bigint; fs_base: bigint; gs_base: bigint;
  ds: bigint; es: bigint; fs: bigint; gs: bigint;
}

/** struct user_desc as PTRACE_GET_THREAD_AREA returns it. */
export interface UserDesc {
  entryNumber: number;
  baseAddr: number;
  limit: number;
  seg32bit: boolean;
  contents: number;
  readExecOnly: boolean;
  limitInPages: boolean;
  segNotPresent: boolean;
  useable: boolean;
}

/** The mm_struct fields the image records (binfmt_mm_image). */
export interface MmFields {
  flags: bigint;
  defFlags: bigint;
  startCode: number; endCode: number;
  startData: number; endData: number;
  startBrk: number; brk: number;
  startStack: number;
  argStart: number; argEnd: number;
  envStart: number; envEnd: number;
}

/** One line of /proc/<pid>/smaps with the flags that matter to a dumper. */
export interface Vma {
  start: number;
  end: number;
  read: boolean;
  write: boolean;
  exec: boolean;
  /** 's' in maps: VM_MAYSHARE. */
  mayShare: boolean;
  /** File offset in bytes. */
  offset: number;
  /** "major:minor" as maps prints it. */
  dev: string;
  inode: number;
  /** Path or pseudo-name ([heap], [stack], [vdso], ...); '' for anonymous. */
  name: string;
  /** The two-letter VmFlags mnemonics (rd, wr, sh, io, pf, dd, ht, ...). */
  vmFlags: Set<string>;
}

/** One thread of the frozen thread group. */
export interface ThreadState {
  tid: number;
  regs: UserRegs;
  /** GDT TLS entries 12..14. */
  tls: UserDesc[];
}

/** One frozen, consistent view of a process: everything every layout is computed from. */
export interface Snapshot {
  pid: number;
  /** starttime from /proc/<pid>/stat: with pid, it names one process for good. */
  startTime: number;
  /** Leader first. */
  threads: ThreadState[];
  mm: MmFields;
  /** In address order, [vsyscall] excluded. */
  vmas: Vma[];
  /** Present or swapped pages of the VMAs whose pages a dump carries. */
  pages: PageIndex;
  /** What the ELF core needs beyond the dump's fields: read when a core is first laid out. */
  readonly core: CoreInfo;
  /** What a restore needs beyond v0: the image extension. */
  restore: ImageExtension;
}

/**
 * The facts of a snapshot that only the ELF core needs (its notes, and which VMAs carry bytes),
 * read while the process is frozen.
 */
export interface CoreInfo {
  /** /proc/<pid>/coredump_filter: the MMF_DUMP_* bits, bit 0 = anonymous private. */
  filter: number;
  /** Snapshot.vmas with their VmFlags (from smaps), which vma_dump_size decides by. */
  vmas: Vma[];
  /** What vma_dump_size asks of each VMA, one per entry of vmas. */
  vmaFacts: VmaFacts[];
  /** The [vsyscall] gate area: no VMA of the mm, yet the kernel's core carries it, last. */
  gate: Vma | null;
  process: ProcessInfo;
  /** The leader's siginfo_t (128 bytes), all zero when no signal stopped it. */
  siginfo: Buffer;
  /** /proc/<pid>/auxv: the saved auxiliary vector up to and including AT_NULL. */
  auxv: Buffer;
  /** Per thread, in the order of Snapshot.threads. */
  threads: ThreadCoreState[];
  /** The NT_X86_XSAVE_LAYOUT records, or null when the CPU's XSAVE layout could not be read. */
  xsaveLayout: Buffer | null;
}

export interface VmaFacts {
  /** Holds anonymous pages (written private memory): userspace's view of vma->anon_vma. */
  anonymous: boolean;
  /** Its first page starts with the ELF magic (checked for readable file mappings at offset 0). */
  startsWithElf: boolean;
  /** The mapped file, or null for a VMA without one. */
  file: MappedFile | null;
}

export interface MappedFile {
  /** i_nlink: 0 for deleted files and anonymous shared memory. */
  links: number;
  /** Any execute bit in i_mode. */
  executable: boolean;
  /** Bytes of a regular file (pages past its end read as zeros in a core); null for others. */
  size: number | null;
}

/** NT_PRPSINFO's process fields (the leader's, as /proc shows them while frozen). */
export interface ProcessInfo {
  /** Its id, its parent's, its group's and session's, in its own pid namespace (0: outside it). */
  pid: number;
  ppid: number;
  pgrp: number;
  sid: number;
  /** The state letter of /proc/<pid>/stat. */
  state: string;
  nice: number;
  /** PF_* task flags. */
  flags: number;
  /** Real uid and gid. */
  uid: number;
  gid: number;
  comm: string;
  /** The start of the argument area, NULs turned into spaces, at most 79 bytes. */
  args: Buffer;
  /** CPU time of waited-for children, in clock ticks. */
  cutime: number;
  cstime: number;
}

/** NT_PRSTATUS's, NT_FPREGSET's and NT_X86_XSTATE's per-thread fields. */
export interface ThreadCoreState {
  tid: number;
  /** Its id in its own pid namespace (gettid there). */
  ownTid: number;
  /** Thread-private pending signals (SigPnd) and blocked signals (SigBlk). */
  sigPending: bigint;
  sigBlocked: bigint;
  /** The signal mask its program set (getSignalMask): SigBlk but in a sigsuspend, ppoll or pselect. */
  signalMask: bigint;
  /** CPU time in clock ticks; the leader's is the whole group's, as in the kernel's core. */
  utime: number;
  stime: number;
  /** The FXSAVE area (NT_PRFPREG, 512 bytes). */
  fpregs: Buffer;
  /** The XSAVE area (NT_X86_XSTATE). */
  xstate: Buffer;
}
