// What an ELF core needs beyond the dump's snapshot: each thread's FPU state, signal masks and CPU
// times; the process's ids, credentials and arguments; auxv; the siginfo of the stop; the facts
// vma_dump_size decides by; and the CPU's XSAVE format. readCoreInfo runs while the process is
// frozen; readCoreShape reads what a core's size depends on without freezing anything.

import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { Errno, ImgfsError } from './errors.js';
import { encodeXsaveLayout, NT_PRFPREG, NT_X86_XSTATE, XSAVE_XCR0_OFFSET, type XsaveComponent } from './elfnotes.js';
import type { CoreShape } from './coregen.js';
import type { CoreInfo, MappedFile, ProcessInfo, ThreadCoreState, Vma, VmaFacts } from './model.js';
import { isDeleted } from './proc/deleted.js';
import { PAGE_IS_FILE, PAGE_IS_PFNZERO, PAGE_IS_PRESENT, PAGE_IS_SWAPPED, rangesWithPages, type PageQuery } from './proc/pagemap.js';
import { parseSmaps, readSmaps } from './proc/smaps.js';
import { liveThreadCount, readStat, type ProcStat } from './proc/stat.js';
import { innermostId, ownId, parentIdSeen, statusField } from './proc/status.js';
import { NativeError } from './ptrace/errors.js';
import { freezeThreadGroup } from './ptrace/freeze.js';
import { PTRACE_EVENT_STOP, ptraceBuffer } from './ptrace/libc.js';
import { readMemory } from './ptrace/memory.js';
import { getRegset } from './ptrace/regs.js';
import { statCached } from './ptrace/statx.js';
import { getSignalMask } from './ptrace/threadstate.js';
import { SIGINFO_SIZE } from './ptrace/syscalls.js';
import { isServedHere } from './servedfiles.js';
import { fromWords } from './u64.js';

const PTRACE_GETSIGINFO = 0x4202;
const { SIGTRAP } = osConstants.signals;
const ELF_MAGIC = Buffer.from('\x7fELF', 'latin1');
/** ELF_PRARGSZ - 1: the argument bytes NT_PRPSINFO holds. */
const ARGS_MAX = 79;
const GATE_NAME = '[vsyscall]';

/** What the freeze's stop itself shows, read before any injected syscall changes it; and auxv. */
export interface StopState {
  threads: ThreadCoreState[];
  siginfo: Buffer;
  auxv: Buffer;
  /**
   * The thread group leader's /proc stat from before the freeze: the core's process state is the
   * one it was in (sleeping, stopped, a zombie whose threads run on), not our tracing stop; its
   * flags and nice are the leader's, as the kernel's fill_psinfo takes them.
   */
  leader: ProcStat;
}

/** leader: the leader's stat, read before the freeze. */
export function readStopState(pid: number, tids: readonly number[], leader: ProcStat): StopState {
  return {
    leader,
    threads: tids.map((tid) => threadCoreState(pid, tid)),
    siginfo: stopSiginfo(pid),
    auxv: readFileSync(`/proc/${pid}/auxv`),
  };
}

/**
 * Reads the core's facts of a frozen process. Its VmFlags come from smaps, whose walk of every
 * page table costs tens of milliseconds per resident GiB: a dump alone never pays it.
 */
export function readCoreInfo(pid: number, stop: StopState): CoreInfo {
  const vmas = readSmaps(pid).filter((v) => v.name !== GATE_NAME);
  const format = learnXstateFormat(stop.threads[0].xstate);
  return {
    filter: coredumpFilter(pid),
    vmas,
    vmaFacts: vmaFacts(pid, vmas),
    gate: gateVma(pid),
    process: processInfo(pid, stop.leader),
    siginfo: stop.siginfo,
    auxv: stop.auxv,
    threads: stop.threads,
    xsaveLayout: format.layout,
  };
}

/** What the size of a core of pid taken now would depend on, read without freezing it. */
export function readCoreShape(pid: number): CoreShape {
  const vmas = readSmaps(pid).filter((v) => v.name !== GATE_NAME);
  const format = xstateFormat();
  return {
    vmas,
    core: { filter: coredumpFilter(pid), vmaFacts: vmaFacts(pid, vmas), gate: gateVma(pid) },
    threadCount: liveThreadCount(pid),
    xstateSize: format.size,
    auxvSize: readFileSync(`/proc/${pid}/auxv`).length,
    xsaveLayoutSize: format.layout?.length ?? 0,
  };
}

function coredumpFilter(pid: number): number {
  return parseInt(readFileSync(`/proc/${pid}/coredump_filter`, 'latin1'), 16);
}

/** The kernel's gate area, which only /proc lists as a mapping (maps: no page walk, unlike smaps). */
function gateVma(pid: number): Vma | null {
  const line = /^[0-9a-f]+-[0-9a-f]+ .* \[vsyscall\]$/m.exec(readFileSync(`/proc/${pid}/maps`, 'utf8'))?.[0];
  return line ? parseSmaps(`${line}\n`)[0] : null;
}

function vmaFacts(pid: number, vmas: readonly Vma[]): VmaFacts[] {
  const anonymous = vmasWithAnonymousPages(pid, vmas);
  return vmas.map((vma, i) => {
    if (!hasFile(vma)) return { anonymous: anonymous[i], startsWithElf: false, file: null };
    const path = mapFilesPath(pid, vma);
    const file = mappedFile(path, vma);
    const elfCandidate = vma.offset === 0 && vma.read && !vma.vmFlags.has('sh') && !isServedHere(vma);
    return { anonymous: anonymous[i], startsWithElf: elfCandidate && startsWithElf(path), file };
  });
}

/** What PAGEMAP_SCAN fails with on kernels (before 6.7) that lack it. */
const SCAN_UNSUPPORTED = new Set([Errno.EINVAL, Errno.ENOTTY, Errno.EOPNOTSUPP]);

/** Pages the process wrote: present or swapped, neither file-backed nor the zero page. */
const ANONYMOUS_PAGES: PageQuery = {
  inverted: PAGE_IS_FILE | PAGE_IS_PFNZERO,
  mask: PAGE_IS_FILE | PAGE_IS_PFNZERO,
  anyOf: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
};

/**
 * For each VMA, whether it holds anonymous pages, resident or swapped out: userspace's view of the
 * anon_vma a first write creates. Only private VMAs are asked (for the others vma_dump_size never
 * looks). PAGEMAP_SCAN stops at the first page that is neither file-backed nor the zero page;
 * without it, smaps' Anonymous and Swap fields tell the same, at the cost of a walk of every page
 * table. A VMA that dropped all its anonymous pages again, or inherited anon_vma in a split, keeps
 * anon_vma in the kernel but shows no page here.
 */
function vmasWithAnonymousPages(pid: number, vmas: readonly Vma[]): boolean[] {
  const asked = (vma: Vma) => !['sh', 'io', 'pf'].some((flag) => vma.vmFlags.has(flag));
  try {
    const askedVmas = vmas.filter(asked);
    const found = rangesWithPages(pid, askedVmas.map((v): [number, number] => [v.start, v.end]), ANONYMOUS_PAGES);
    const anonymous = new Set(askedVmas.filter((_, i) => found[i]));
    return vmas.map((vma) => anonymous.has(vma));
  } catch (err) {
    if (!(err instanceof NativeError && SCAN_UNSUPPORTED.has(err.errno))) throw err;
    return anonymousPerSmaps(pid, vmas).map((anon, i) => anon && asked(vmas[i]));
  }
}

function anonymousPerSmaps(pid: number, vmas: readonly Vma[]): boolean[] {
  const withPages = new Set<number>();
  let start = -1;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^([0-9a-f]+)-[0-9a-f]+ /.exec(line);
    if (header) start = parseInt(header[1], 16);
    else if (/^(?:Anonymous|Swap):\s+[1-9]/.test(line)) withPages.add(start);
  }
  return vmas.map((vma) => withPages.has(vma.start));
}

/** The mapped file itself, as /proc/<pid>/map_files opens it. */
function mapFilesPath(pid: number, vma: Vma): string {
  return `/proc/${pid}/map_files/${vma.start.toString(16)}-${vma.end.toString(16)}`;
}

/** maps shows a device and inode only for VMAs with a file (shared anonymous memory has one). */
function hasFile(vma: Vma): boolean {
  return vma.inode !== 0 || vma.dev !== '00:00';
}

function mappedFile(path: string, vma: Vma): MappedFile {
  try {
    const st = statCached(path);
    return { links: st.nlink, executable: (st.mode & 0o111) !== 0, size: st.isFile() ? Number(st.size) : null };
  } catch {
    // map_files needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE: judge by the name instead.
    return { links: isDeleted(vma.name) ? 0 : 1, executable: false, size: null };
  }
}

/**
 * Whether the file starts with the ELF magic, as the first page of a mapping at offset 0 does
 * unless a write changed it. The kernel reads the page itself; reading the file instead leaves the
 * page tables alone, so a dump of the same snapshot finds no page that its page scan did not.
 */
function startsWithElf(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false; // without map_files, only the execute bit marks an ELF header page
  }
  try {
    const magic = Buffer.alloc(ELF_MAGIC.length);
    return readSync(fd, magic, 0, magic.length, 0) === magic.length && magic.equals(ELF_MAGIC);
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/** A field's first word, which must be there. */
function requiredField(status: string, name: string, path: string): string {
  const value = statusField(status, name)?.split(/\s+/)[0];
  if (value === undefined) throw new Error(`${path} has no ${name} field`);
  return value;
}

function processInfo(pid: number, leader: ProcStat): ProcessInfo {
  const stat = readStat(pid);
  const statusPath = `/proc/${pid}/status`;
  const status = readFileSync(statusPath, 'utf8');
  // The ids as the process sees them, in its own pid namespace, as the kernel's dumper writes them.
  return {
    pid: innermostId(status, 'NStgid', pid), ppid: parentIdSeen(status, stat.ppid),
    pgrp: innermostId(status, 'NSpgid', stat.pgrp), sid: innermostId(status, 'NSsid', stat.session),
    state: leader.state, nice: leader.nice, flags: leader.flags,
    uid: Number(requiredField(status, 'Uid', statusPath)), gid: Number(requiredField(status, 'Gid', statusPath)),
    comm: stat.comm, args: argumentBytes(pid, stat.argStart, stat.argEnd), cutime: stat.cutime, cstime: stat.cstime,
  };
}

/** The kernel's fill_psinfo: the start of arg_start..arg_end, each NUL a space. */
function argumentBytes(pid: number, argStart: number, argEnd: number): Buffer {
  const length = Math.min(Math.max(argEnd - argStart, 0), ARGS_MAX);
  if (length === 0) return Buffer.alloc(0);
  let args: Buffer;
  try {
    args = readMemory(pid, argStart, length);
  } catch {
    return Buffer.alloc(0); // an unmapped argument area: the kernel's dump would fail here
  }
  for (let i = 0; i < args.length; i++) if (args[i] === 0) args[i] = 0x20;
  return args;
}

function threadCoreState(pid: number, tid: number): ThreadCoreState {
  const statusPath = `/proc/${pid}/task/${tid}/status`;
  const status = readFileSync(statusPath, 'utf8');
  // The kernel's prstatus gives the leader the whole group's CPU time, which /proc/<pid>/stat has.
  const stat = tid === pid ? readStat(pid) : readStat(pid, tid);
  return {
    tid,
    ownTid: ownId(tid, status),
    sigPending: BigInt(`0x${requiredField(status, 'SigPnd', statusPath)}`),
    sigBlocked: BigInt(`0x${requiredField(status, 'SigBlk', statusPath)}`),
    signalMask: getSignalMask(tid),
    utime: stat.utime,
    stime: stat.stime,
    fpregs: getRegset(tid, NT_PRFPREG),
    xstate: getRegset(tid, NT_X86_XSTATE),
  };
}

/**
 * The leader's siginfo for NT_SIGINFO. The kernel records the signal that killed the process; a
 * snapshot records a signal only when one stopped it: a group-stop (SIGSTOP and friends) or a
 * signal the freeze caught on its way in. The freeze's own PTRACE_INTERRUPT is no signal of the
 * process, so its SIGTRAP stop leaves the note all zero. A group-stop seen through PTRACE_SEIZE
 * has a record ptrace makes up (si_code PTRACE_EVENT_STOP << 8 | the signal, the process its own
 * sender), which no kernel core holds: the note says the signal, sent by a user (SI_USER), whose
 * pid and uid the stop no longer tells (0).
 */
function stopSiginfo(pid: number): Buffer {
  const siginfo = Buffer.alloc(SIGINFO_SIZE);
  try {
    ptraceBuffer(PTRACE_GETSIGINFO, pid, 0, siginfo);
  } catch {
    return Buffer.alloc(SIGINFO_SIZE);
  }
  const signal = siginfo.readInt32LE(0);
  if (siginfo.readInt32LE(8) >> 8 !== PTRACE_EVENT_STOP) return siginfo;
  const groupStop = Buffer.alloc(SIGINFO_SIZE);
  if (signal !== SIGTRAP) groupStop.writeInt32LE(signal, 0); // si_code 0: SI_USER
  return groupStop;
}

/**
 * The XSAVE area as ptrace and the kernel's core present it: the same for every process, since
 * it is the kernel's user-visible format (fpu_user_cfg). Learned from the first snapshot, or, when
 * a size is asked before any, from a short-lived child seized for the purpose.
 */
export interface XstateFormat {
  size: number;
  /** NT_X86_XSAVE_LAYOUT's descriptor, or null when the CPU cannot be asked. */
  layout: Buffer | null;
}

let knownFormat: XstateFormat | undefined;

function learnXstateFormat(xstate: Buffer): XstateFormat {
  knownFormat ??= { size: xstate.length, layout: xsaveLayout(xstate) };
  return knownFormat;
}

/** The XSAVE area format, probing for it if no snapshot has shown it yet. */
export function xstateFormat(): XstateFormat {
  return knownFormat ?? learnXstateFormat(probeXstate());
}

const PROBE_FREEZE_TIMEOUT_MS = 2000;

function probeXstate(): Buffer {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  child.on('error', () => {}); // a failed spawn leaves no pid, reported below
  if (child.pid === undefined) throw new ImgfsError(Errno.EIO, 'cannot learn the XSAVE area size: spawning sleep failed');
  try {
    const frozen = freezeThreadGroup(child.pid, { timeoutMs: PROBE_FREEZE_TIMEOUT_MS });
    try {
      return getRegset(child.pid, NT_X86_XSTATE);
    } finally {
      frozen.release();
    }
  } finally {
    child.kill('SIGKILL');
  }
}

const FIRST_EXTENDED_FEATURE = 2;
const CPUID_XSAVE_LEAF = 0xd;

/**
 * The kernel's x86 elf_coredump_extra_notes: each extended feature of the user mask with its size
 * and offset, from CPUID leaf 0xD (read through /dev/cpu/0/cpuid, the cpuid driver).
 */
function xsaveLayout(xstate: Buffer): Buffer | null {
  const features = xstate.readBigUInt64LE(XSAVE_XCR0_OFFSET);
  let fd: number;
  try {
    fd = openSync('/dev/cpu/0/cpuid', 'r');
  } catch {
    return null;
  }
  try {
    const components: XsaveComponent[] = [];
    const regs = Buffer.alloc(16);
    for (let type = FIRST_EXTENDED_FEATURE; type < 64; type++) {
      if (((features >> BigInt(type)) & 1n) === 0n) continue;
      // The file offset selects the leaf (low 32 bits) and subleaf (high 32 bits).
      readSync(fd, regs, 0, 16, fromWords(CPUID_XSAVE_LEAF, type));
      components.push({ type, size: regs.readUInt32LE(0), offset: regs.readUInt32LE(4) });
    }
    return encodeXsaveLayout(components);
  } finally {
    closeSync(fd);
  }
}
