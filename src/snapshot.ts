// Taking one frozen, consistent snapshot of a process: freeze the thread group, then read
// registers, mm fields, the VMA layout and the page index while nothing in it can change.

import { readFileSync } from 'node:fs';
import { Errno, ImgfsError } from './errors.js';
import { readCoreInfo, readStopState } from './coreinfo.js';
import { CKPT_TLS_ENTRIES, GDT_ENTRY_TLS_MIN, USER32_CS_SELECTOR } from './format.js';
import { PAGE_SIZE, type CoreInfo, type MmFields, type Snapshot, type ThreadState, type Vma } from './model.js';
import type { PageIndex } from './pageindex.js';
import { isDeleted } from './proc/deleted.js';
import { processFileOwner, type FileOwner } from './proc/owner.js';
import { scanPages } from './proc/pagemap.js';
import { readMaps, readSmaps } from './proc/smaps.js';
import { isKernelThread, memoryHolder, readStat, threadRunTime, type ProcStat } from './proc/stat.js';
import { statusField } from './proc/status.js';
import { freezeThreadGroupAsync } from './ptrace/freeze.js';
import { readMemoryForced } from './ptrace/memory.js';
import { copyMemory } from './ptrace/memorycopy.js';
import { getRegs, getThreadArea } from './ptrace/regs.js';
import { isServedHere } from './servedfiles.js';
import { askTask, readRestoreInfo, settleDeferred, type TaskAnswers } from './restoreinfo.js';
import type { KeptPages, MemorySource } from './targetmemory.js';

export interface SnapshotOptions {
  /** Freeze a running task (default); otherwise only an already stopped task can be dumped. */
  freeze: boolean;
  freezeTimeoutMs: number;
  /** Let a running task run on once its snapshot is taken, its pages read from a copy (--live). */
  live?: boolean;
  /** Says why a --live snapshot holds its task frozen after all. */
  log?: (line: string) => void;
}

export interface HeldSnapshot {
  snapshot: Snapshot;
  /** Who owns its files (processFileOwner), as of the freeze. */
  owner: FileOwner;
  /** Where the snapshot's pages are read: the frozen task, or its copy (--live). */
  memory: MemorySource;
  /** Lets the task run on (or stay stopped, if it was stopped before), or ends its copy. Idempotent. */
  release(): void;
}

const GDT_TLS_ENTRIES = Array.from({ length: CKPT_TLS_ENTRIES }, (_, i) => GDT_ENTRY_TLS_MIN + i);
const MMF_DUMP_FILTER_SHIFT = 2;
const MMF_DISABLE_THP = 24n;

/** --no-freeze: the task is not stopped, so no snapshot of it can be taken now (EINVAL, as in the proposal). */
export class NotStoppedError extends ImgfsError {
  constructor(message: string) {
    super(Errno.EINVAL, message);
  }
}

/** Freezes pid and takes its snapshot; the event loop runs on while the freeze waits for threads. */
export async function takeSnapshot(pid: number, options: SnapshotOptions): Promise<HeldSnapshot> {
  // ptrace refuses a process its own tracer, and imgfs could not serve its own reads frozen.
  if (pid === process.pid) throw new ImgfsError(Errno.EPERM, `pid ${pid} is this imgfs: it cannot freeze the process that serves the mount`);
  const before = readStat(pid);
  if (isKernelThread(before)) throw new ImgfsError(Errno.EINVAL, `pid ${pid} is a kernel thread: it has no memory to dump`);
  const holder = memoryHolder(pid);
  if (holder === null) throw new ImgfsError(Errno.ESRCH, `pid ${pid} has exited`);
  const state = holder === pid ? before.state : readStat(pid, holder).state;
  if (!options.freeze && state !== 'T') {
    throw new NotStoppedError(`pid ${pid} is not stopped (state ${state}) and --no-freeze forbids freezing it`);
  }
  // A stopped task is seized too: ptrace is the only way to its registers, and a task that was
  // stopped stays stopped when it is released (with --no-freeze, as soon as its snapshot is taken).
  const frozen = await freezeThreadGroupAsync(pid, { timeoutMs: options.freezeTimeoutMs });
  try {
    if (readStat(pid).startTime !== before.startTime) throw new ImgfsError(Errno.ESRCH, `pid ${pid} exited during the freeze`);
    // The leader, or the thread that stands for it once it has exited (memoryHolder): everything
    // below reads the process through it.
    const proc = frozen.tids[0];
    const stat = readStat(proc);
    // Order matters: registers and the stop's own state first, as the freeze found them; then the
    // injected questions, which change the stop and may fault in the page of the syscall they
    // run; then the memory, so the page index matches what the dump will read.
    const threads = frozen.tids.map(threadState);
    checkLongMode(pid, threads);
    const stop = readStopState(proc, frozen.tids, before);
    const vmas = mmVmas(readVmas(proc));
    const answers = askTask(proc, threads, vmas);
    const pages = scanMemory(proc, vmas);
    let core: CoreInfo | undefined;
    const mm = mmFields(proc, stat, answers);
    const snapshot: Snapshot = {
      pid,
      startTime: before.startTime,
      threads,
      // Still consistent when first asked for: the task stays frozen while the snapshot is held.
      get core() {
        return (core ??= readCoreInfo(proc, stop));
      },
      mm,
      vmas,
      pages,
      restore: readRestoreInfo({ pid: proc, threads, vmas, mm }, stop, answers, state === 'T'),
    };
    const owner = processFileOwner(proc);
    if (!options.freeze) return await heldWhileStopped(snapshot, owner, frozen, stat.startTime);
    const live = options.live && state !== 'T' ? liveCopy(snapshot, options.log) : null;
    if (live) {
      frozen.release();
      return { snapshot, owner, ...live };
    }
    return { snapshot, owner, memory: { pid: proc, startTime: stat.startTime, sharesPages: false, kept: [] }, release: () => frozen.release() };
  } catch (err) {
    frozen.release();
    throw err;
  }
}

/** How long a stopped task let go may take to be back in its stop. */
const RESTOP_TIMEOUT_MS = 1000;

/**
 * --no-freeze: the proposal's semantics. The task was stopped (SIGSTOP) and stays so without us:
 * what the files would read from it later is read now, then it is let go, and its pages are read
 * while it stays stopped; a read once a thread has run since (SIGCONT) fails with EINVAL
 * (MemorySource.stopped). Let go, each thread runs a little kernel code on its way back into its
 * stop: its CPU time counts from there.
 */
async function heldWhileStopped(
  snapshot: Snapshot, owner: FileOwner, frozen: { tids: readonly number[]; release(): void }, startTime: number,
): Promise<HeldSnapshot> {
  const proc = snapshot.threads[0].tid;
  settleDeferred(snapshot.restore, snapshot.core.vmas, snapshot.vmas);
  frozen.release();
  const deadline = performance.now() + RESTOP_TIMEOUT_MS;
  while (!frozen.tids.every((tid) => readStat(proc, tid).state === 'T')) {
    if (performance.now() > deadline) throw new NotStoppedError(`pid ${snapshot.pid} was continued while its snapshot was taken, and --no-freeze does not hold it`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const stopped = frozen.tids.map((tid) => ({ tid, runTime: threadRunTime(proc, tid) }));
  return { snapshot, owner, memory: { pid: proc, startTime, sharesPages: false, kept: [], stopped }, release: () => undefined };
}

/** VmFlags (smaps) of VMAs a fork would not copy as they are, and what the copy would lack. */
const FORK_BLIND_FLAGS: [flag: string, why: string][] = [
  ['dc', 'MADV_DONTFORK: a copy would not have it'],
  ['wf', 'MADV_WIPEONFORK: a copy would see zeros'],
];
/** VmFlags of VMAs registered with userfaultfd: a fork may wait for the process's own handler. */
const USERFAULTFD_FLAGS = ['um', 'uw', 'ui'];
/**
 * The most bytes of pages a copy would lack that --live keeps in our memory instead (V8, the
 * engine of Node.js, holds a few hundred KiB of MADV_DONTFORK memory); beyond, the task is held.
 */
const KEPT_MAX = 64 << 20;

/**
 * For --live: reads now what the files would read later from the frozen task (the core's facts,
 * the VMA flags, deleted files' bytes, the pages of anonymous memory a fork does not copy, the
 * pages of its arguments, which the copy shows its name in) and makes the copy of its memory that
 * the other pages are read from instead. null, the reason
 * logged, when a copy would not hold every page the files carry or cannot be made: the task is
 * then held frozen as without --live.
 */
function liveCopy(snapshot: Snapshot, log?: (line: string) => void): { memory: MemorySource; release(): void } | null {
  const { pid } = snapshot;
  const proc = snapshot.threads[0].tid;
  const held = (why: string) => {
    log?.(`pid ${pid}: held frozen while its snapshot is read (--live): ${why}`);
    return null;
  };
  const smaps = snapshot.core.vmas;
  const blind: Vma[] = [];
  for (const vma of smaps) {
    const where = `its VMA ${vma.start.toString(16)}-${vma.end.toString(16)}`;
    if (USERFAULTFD_FLAGS.some((f) => vma.vmFlags.has(f))) return held(`${where} is registered with userfaultfd`);
    const flag = FORK_BLIND_FLAGS.find(([f]) => vma.vmFlags.has(f));
    if (!flag || snapshot.pages.pagesIn(vma.start, vma.end) === 0) continue;
    // A file's pages a read may fault in from the file: only the process has them mapped.
    if (vma.name.startsWith('/')) return held(`${where}, of a file, is ${flag[1]}`);
    blind.push(vma);
  }
  const keptBytes = blind.reduce((sum, v) => sum + snapshot.pages.pagesIn(v.start, v.end) * PAGE_SIZE, 0);
  if (keptBytes > KEPT_MAX) return held(`${keptBytes >> 20} MiB of its memory is not copied by a fork (MADV_DONTFORK, MADV_WIPEONFORK), over the ${KEPT_MAX >> 20} MiB kept aside`);
  settleDeferred(snapshot.restore, smaps, snapshot.vmas);
  const kept = keepPages(proc, snapshot.pages, blind);
  const commandLine = renamableCommandLine(snapshot, kept);
  if (commandLine) kept.push(...keepPages(proc, snapshot.pages, [commandLine.pages]));
  kept.sort((a, b) => a.start - b.start);
  try {
    const copy = copyMemory(proc, commandLine && commandLine.area);
    return { memory: { pid: copy.pid, startTime: copy.startTime, sharesPages: true, kept }, release: () => copy.release() };
  } catch (err) {
    return held((err as Error).message);
  }
}

/**
 * The process's argument area (what /proc/<pid>/cmdline shows), with the environment where it
 * follows, for the copy to show its own name there instead, and the whole pages they lie in, which
 * the copy's reads then take from kept bytes; null where those pages are not all in the snapshot or
 * some are kept already. A name longer than the arguments (`./a 1`) runs on into the environment:
 * the kernel shows that as the command line, setproctitle's way, once the arguments' last byte is
 * not NUL.
 */
function renamableCommandLine(snapshot: Snapshot, kept: readonly KeptPages[]): { area: Range; pages: Range } | null {
  const { argStart, argEnd, envStart, envEnd } = snapshot.mm;
  if (argEnd <= argStart) return null;
  const end = envStart === argEnd && envEnd > envStart ? envEnd : argEnd;
  const pages = { start: argStart - (argStart % PAGE_SIZE), end: Math.ceil(end / PAGE_SIZE) * PAGE_SIZE };
  if (snapshot.pages.pagesIn(pages.start, pages.end) !== (pages.end - pages.start) / PAGE_SIZE) return null;
  if (kept.some((k) => k.start < pages.end && k.start + k.bytes.length > pages.start)) return null;
  return { area: { start: argStart, end }, pages };
}

interface Range {
  start: number;
  end: number;
}

/** The snapshot's pages in ranges, read now, through /proc/<pid>/mem (forced, as a dump's reads are). */
function keepPages(pid: number, pages: PageIndex, ranges: readonly Range[]): KeptPages[] {
  return ranges.flatMap((range) => [...pages.runsIn(range.start, range.end)]
    .map(([start, end]): KeptPages => ({ start, bytes: readMemoryForced(pid, start, end - start) })));
}

/** The VMAs of the mm: [vsyscall] is the kernel's, not one of them. */
function mmVmas(vmas: Vma[]): Vma[] {
  return vmas.filter((v) => v.name !== '[vsyscall]');
}

/**
 * The present or swapped pages of the VMAs. Consistent only while the task is frozen; unfrozen it
 * serves as a preview of the next snapshot's size.
 */
function scanMemory(pid: number, vmas: readonly Vma[]): PageIndex {
  return scanPages(pid, vmas.filter(isScannable).map((v): [number, number] => [v.start, v.end]));
}

/**
 * The VMAs, from maps, which costs nothing per page, unlike smaps. Only a mapped device may be
 * VM_IO or VM_PFNMAP without PAGEMAP_SCAN skipping it, and only smaps tells: then smaps it is.
 */
function readVmas(pid: number): Vma[] {
  const vmas = readMaps(pid);
  const mapsDevice = vmas.some((v) => v.name.startsWith('/dev/') && !isDeleted(v.name));
  return mapsDevice ? readSmaps(pid) : vmas;
}

/**
 * What the next snapshot's VMAs and pages would be, cheaply, for a size asked before an open.
 * Without VmFlags, VM_IO/VM_PFNMAP VMAs are not excluded here, but PAGEMAP_SCAN finds no page in
 * a PFN map, so the dump's size comes out the same.
 */
export function previewMemoryLayout(pid: number): Pick<Snapshot, 'vmas' | 'pages'> {
  const vmas = mmVmas(readMaps(pid));
  return { vmas, pages: scanMemory(pid, vmas) };
}

/**
 * Refuses a process any of whose threads runs 32-bit code: the image describes x86_64 tasks, and
 * a system call injected into such a thread would run as the i386 call of that number (13, our
 * rt_sigaction, is i386 time(), which writes into the task's memory).
 */
function checkLongMode(pid: number, threads: readonly ThreadState[]): void {
  const compat = threads.find((t) => t.regs.cs === BigInt(USER32_CS_SELECTOR));
  if (compat) throw new ImgfsError(Errno.ENOEXEC, `pid ${pid} runs 32-bit code (thread ${compat.tid}): imgfs dumps x86_64 processes only`);
}

function threadState(tid: number): ThreadState {
  return { tid, regs: getRegs(tid), tls: GDT_TLS_ENTRIES.map((entry) => getThreadArea(tid, entry)) };
}

/**
 * VMAs whose pages exist as memory and can be read: [vvar] and I/O or PFN maps have none to read;
 * a mapping of a file of our own mount cannot be read without asking ourselves (servedfiles.ts).
 */
export function isScannable(vma: Vma): boolean {
  return !vma.vmFlags.has('io') && !vma.vmFlags.has('pf') && !vma.name.startsWith('[vvar') && !isServedHere(vma);
}

function mmFields(pid: number, stat: ProcStat, { brk, dumpable }: TaskAnswers): MmFields {
  return {
    flags: mmFlags(pid, dumpable),
    defFlags: 0n,
    startCode: stat.startCode, endCode: stat.endCode,
    startData: stat.startData, endData: stat.endData,
    startBrk: stat.startBrk, brk,
    startStack: stat.startStack,
    argStart: stat.argStart, argEnd: stat.argEnd,
    envStart: stat.envStart, envEnd: stat.envEnd,
  };
}

/**
 * mm->flags as far as userspace sees them: the dumpable mode (the files of a non-dumpable task
 * in /proc/<pid>/ are root's), the coredump filter bits, and MMF_DISABLE_THP.
 */
function mmFlags(pid: number, dumpable: number): bigint {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const filter = BigInt(parseInt(readFileSync(`/proc/${pid}/coredump_filter`, 'utf8'), 16));
  const thpDisabled = statusField(status, 'THP_enabled') === '0' ? 1n << MMF_DISABLE_THP : 0n;
  return BigInt(dumpable) | (filter << BigInt(MMF_DUMP_FILTER_SHIFT)) | thpDisabled;
}
