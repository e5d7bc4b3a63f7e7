// The snapshot model every layout is computed from. Addresses and sizes are JS numbers:
// x86_64 user addresses stay below 2^47, far inside the 2^53 that doubles hold exactly.
// Register values are full 64-bit words, hence bigint.

import type { PageIndex } from './pageindex.js';

export const PAGE_SIZE = 4096;

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
}
