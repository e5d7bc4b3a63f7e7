// What the image extension records, read from a frozen process: exe, cwd, the exact brk, the
// signal dispositions (which only the task itself can ask the kernel for), the files behind its
// mappings, and its open file descriptors. The rest (registers, FPU state, masks, auxv) the
// snapshot has already read. previewExtensionSize tells the extension's size without freezing.

import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, statSync, writeSync, type BigIntStats } from 'node:fs';
import { Errno, ImgfsError } from './errors.js';
import type { ExtensionFd, ExtensionMappedFile, ExtensionSigaction, FdKind, ImageExtension } from './extension-model.js';
import { extensionSize, SIGACTION_SIZE, SIGNAL_COUNT } from './extension.js';
import { xstateFormat, type StopState } from './coreinfo.js';
import { CKPT_TLS_ENTRIES, isAnonymous } from './format.js';
import { PAGE_SIZE, type Snapshot, type ThreadState, type Vma } from './model.js';
import { scanPages } from './proc/pagemap.js';
import { readMaps } from './proc/smaps.js';
import { injectSyscall, readBrk } from './ptrace/inject.js';
import { readMemory } from './ptrace/memory.js';

const SYS_RT_SIGACTION = 13;
const SIGKILL = 9;
const SIGSTOP = 19;
const SIGCHLD = 17;
/** sizeof(sigset_t) as the kernel's rt_sigaction wants it. */
const KERNEL_SIGSET_SIZE = 8;
/** The x86_64 ABI lets a function use the 128 bytes below its stack pointer without moving it. */
const RED_ZONE = 128;


/** What only the task itself can tell, asked with injected system calls. */
export interface TaskAnswers {
  brk: number;
  sigactions: ExtensionSigaction[];
}

/**
 * Asks a frozen task for its exact brk and its signal dispositions. Runs before the snapshot
 * scans pages: an injected syscall may fault in the page of the instruction it runs, and the
 * scan must see the memory as the dump will read it.
 */
export function askTask(pid: number, threads: readonly ThreadState[]): TaskAnswers {
  const withScratch = threads.map((t) => ({ tid: t.tid, scratch: scratchArea(pid, t.regs.rsp) }));
  const injector = withScratch.find((t) => t.scratch !== null) ?? withScratch[0];
  return {
    brk: readBrk(injector.tid),
    sigactions: readSigactions(pid, injector.tid, injector.scratch),
  };
}

/** Reads the extension of a process that takeSnapshot holds frozen. */
export function readRestoreInfo(snapshot: Pick<Snapshot, 'pid' | 'threads' | 'vmas'>, stop: StopState, answers: TaskAnswers): ImageExtension {
  const { pid, threads, vmas } = snapshot;
  return {
    exe: readlinkSync(`/proc/${pid}/exe`),
    cwd: readlinkSync(`/proc/${pid}/cwd`),
    brk: answers.brk,
    auxv: stop.auxv,
    threads: threads.map((t, i) => ({
      tid: t.tid,
      regs: t.regs,
      tls: t.tls,
      sigmask: stop.threads[i].sigBlocked,
      fpregs: stop.threads[i].fpregs,
      xstate: stop.threads[i].xstate,
    })),
    files: mappedFiles(pid, vmas),
    sigactions: answers.sigactions,
    fds: readFds(pid),
  };
}

/** The size the extension of pid would have if it were frozen now, with these VMAs. */
export function previewExtensionSize(pid: number, vmas: readonly Vma[]): number {
  const xstateSize = xstateFormat().size;
  return extensionSize({
    exe: readlinkSync(`/proc/${pid}/exe`),
    cwd: readlinkSync(`/proc/${pid}/cwd`),
    auxvLength: readFileSync(`/proc/${pid}/auxv`).length,
    threads: readdirSync(`/proc/${pid}/task`).map(() => ({ tlsCount: CKPT_TLS_ENTRIES, xstateSize })),
    filePaths: vmas.filter((v) => !isAnonymous(v)).map((v) => v.name),
    fdTargets: readFds(pid).map((fd) => fd.target),
  });
}

/**
 * Where an injected rt_sigaction can write its 32-byte answer: memory of the thread's stack whose
 * original bytes we save before and put back after, through /proc/<pid>/mem. The thread runs no
 * code of its own in between (it is frozen, and executes only our syscall), so any of its memory
 * would do; we prefer the bytes just below the 128-byte red zone, which are dead to it anyway, so
 * that not even an imgfs killed half-way leaves live data clobbered. Failing that (that page was
 * never touched), the bytes at the stack pointer. Either way the area must lie in present pages
 * of a private writable VMA: the kernel's copy_to_user must neither fault a new page in nor grow
 * the stack, which would change the memory the snapshot records.
 */
function scratchArea(pid: number, rsp: bigint): number | null {
  const sp = Number(BigInt.asUintN(64, rsp));
  const belowRedZone = sp - RED_ZONE - SIGACTION_SIZE;
  const candidates = [belowRedZone - (belowRedZone % 16), sp];
  const vmas = readMaps(pid);
  return candidates.find((address) => isUsableScratch(pid, address, vmas)) ?? null;
}

function isUsableScratch(pid: number, address: number, vmas: readonly Vma[]): boolean {
  const end = address + SIGACTION_SIZE;
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
function readSigactions(pid: number, tid: number, scratch: number | null): ExtensionSigaction[] {
  if (scratch === null) {
    throw new ImgfsError(Errno.EIO, `pid ${pid}: no thread has present, writable stack memory at its stack pointer to read the signal handlers into`);
  }
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const mask = (name: string) => BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)`, 'm').exec(status)?.[1] ?? '0'}`);
  const asked = mask('SigCgt') | mask('SigIgn') | (1n << BigInt(SIGCHLD - 1));
  const saved = readMemory(pid, scratch, SIGACTION_SIZE);
  const actions: ExtensionSigaction[] = [];
  try {
    for (let signal = 1; signal <= SIGNAL_COUNT; signal++) {
      if (signal === SIGKILL || signal === SIGSTOP || !(asked & (1n << BigInt(signal - 1)))) {
        actions.push({ handler: 0n, flags: 0n, restorer: 0n, mask: 0n });
        continue;
      }
      const result = BigInt.asIntN(64, injectSyscall(tid, SYS_RT_SIGACTION, [signal, 0, scratch, KERNEL_SIGSET_SIZE]));
      if (result !== 0n) {
        throw new ImgfsError(Number(-result), `pid ${pid}: rt_sigaction(${signal}) injected into thread ${tid} failed with errno ${-result}`);
      }
      const old = readMemory(pid, scratch, SIGACTION_SIZE);
      actions.push({
        handler: old.readBigUInt64LE(0),
        flags: old.readBigUInt64LE(8),
        restorer: old.readBigUInt64LE(16),
        mask: old.readBigUInt64LE(24),
      });
    }
  } finally {
    writeMemory(pid, scratch, saved);
  }
  return actions;
}

/** /proc/<pid>/mem writes through FOLL_FORCE: the tracer may write any page of its tracee. */
function writeMemory(pid: number, address: number, data: Buffer): void {
  const fd = openSync(`/proc/${pid}/mem`, 'r+');
  try {
    const written = writeSync(fd, data, 0, data.length, address);
    if (written !== data.length) throw new ImgfsError(Errno.EIO, `pid ${pid}: wrote ${written} of ${data.length} bytes at 0x${address.toString(16)}`);
  } finally {
    closeSync(fd);
  }
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

function statMappedFile(pid: number, vma: Vma): BigIntStats {
  const range = `${vma.start.toString(16)}-${vma.end.toString(16)}`;
  try {
    return statSync(`/proc/${pid}/map_files/${range}`, { bigint: true });
  } catch (mapFilesError) {
    // map_files needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE: the path is the next best thing.
    try {
      return statSync(vma.name, { bigint: true });
    } catch {
      throw new ImgfsError(Errno.EIO, `pid ${pid}: cannot stat the file mapped at ${range} (${vma.name}): ${(mapFilesError as Error).message}`);
    }
  }
}

/** Every open descriptor, ascending; one closed while we look (a shared table) is left out. */
export function readFds(pid: number): ExtensionFd[] {
  const numbers = readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b);
  const fds: ExtensionFd[] = [];
  for (const fd of numbers) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1');
      fds.push({
        fd,
        kind: fdKind(statSync(`/proc/${pid}/fd/${fd}`, { bigint: true })),
        flags: parseInt(fdinfoField(info, 'flags', pid, fd), 8),
        offset: Number(fdinfoField(info, 'pos', pid, fd)),
        target,
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return fds;
}

function fdinfoField(info: string, name: string, pid: number, fd: number): string {
  const value = new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(info)?.[1];
  if (value === undefined) throw new ImgfsError(Errno.EIO, `/proc/${pid}/fdinfo/${fd} has no ${name} field`);
  return value;
}

/** Terminal character devices: tty/ttyS (4), tty, console and ptmx (5), pseudo-terminals (136-143). */
const TTY_MAJORS = new Set([4, 5, 136, 137, 138, 139, 140, 141, 142, 143]);

function fdKind(st: BigIntStats): FdKind {
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
