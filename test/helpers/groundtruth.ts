// Independent readers of /proc: what the tests hold a dump against. They share no code with src/.
// Synchronous reads are fine here: /proc is not the FUSE mount.

import fs from 'node:fs';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE } from './image.js';

export interface MapsEntry {
  start: number;
  end: number;
  perms: string;
  /** Byte offset into the file. */
  offset: number;
  dev: string;
  inode: number;
  name: string;
}

/** /proc/<pid>/maps without [vsyscall], which is no VMA of the mm. */
export function readMaps(pid: number): MapsEntry[] {
  return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter(Boolean).map(parseMapsLine)
    .filter((entry) => entry.name !== '[vsyscall]');
}

function parseMapsLine(line: string): MapsEntry {
  const match = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) (\S+) (\d+)\s*(.*)$/.exec(line);
  if (!match) throw new Error(`unparsable maps line: ${line}`);
  return {
    start: parseInt(match[1], 16),
    end: parseInt(match[2], 16),
    perms: match[3],
    offset: parseInt(match[4], 16),
    dev: match[5],
    inode: Number(match[6]),
    name: match[7],
  };
}

/** VmFlags of each VMA of /proc/<pid>/smaps, by start address. */
export function readVmFlags(pid: number): Map<number, Set<string>> {
  const flags = new Map<number, Set<string>>();
  let start = -1;
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^([0-9a-f]+)-[0-9a-f]+ /.exec(line);
    if (header) start = parseInt(header[1], 16);
    else if (line.startsWith('VmFlags:')) flags.set(start, new Set(line.slice(8).trim().split(/\s+/)));
  }
  return flags;
}

/** Bits 63 (present) and 62 (swapped) of a little-endian pagemap entry, in its last byte. */
const PRESENT_OR_SWAPPED = 0xc0;
export const SWAPPED = 0x40;
/** Bit 58: a guard page (MADV_GUARD_INSTALL), which shows as swapped too but holds nothing. */
const GUARD = 0x04;
const PAGEMAP_CHUNK_PAGES = 65536;

/**
 * Addresses of the pages in [start, end) that /proc/<pid>/pagemap reports present or swapped (or,
 * with bits = SWAPPED, swapped), guard pages left out.
 */
export function residentPages(pid: number, start: number, end: number, bits = PRESENT_OR_SWAPPED): number[] {
  return pagesWhere(pid, start, end, (last) => (last & bits) !== 0 && (last & GUARD) === 0);
}

/** Addresses of the guard pages (MADV_GUARD_INSTALL) in [start, end), per /proc/<pid>/pagemap. */
export function guardPages(pid: number, start: number, end: number): number[] {
  return pagesWhere(pid, start, end, (last) => (last & GUARD) !== 0);
}

/** Addresses of the pages in [start, end) whose pagemap entry's last byte passes test. */
function pagesWhere(pid: number, start: number, end: number, test: (last: number) => boolean): number[] {
  const fd = fs.openSync(`/proc/${pid}/pagemap`, 'r');
  const pages: number[] = [];
  try {
    const buffer = Buffer.alloc(PAGEMAP_CHUNK_PAGES * 8);
    for (let chunkStart = start; chunkStart < end; chunkStart += PAGEMAP_CHUNK_PAGES * PAGE_SIZE) {
      const count = Math.min(PAGEMAP_CHUNK_PAGES, (end - chunkStart) / PAGE_SIZE);
      const bytes = fs.readSync(fd, buffer, 0, count * 8, (chunkStart / PAGE_SIZE) * 8);
      if (bytes !== count * 8) throw new Error(`short pagemap read of pid ${pid} at 0x${chunkStart.toString(16)}: ${bytes} bytes`);
      for (let i = 0; i < count; i++) {
        if (test(buffer[8 * i + 7])) pages.push(chunkStart + i * PAGE_SIZE);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return pages;
}

/** length bytes of the target's memory at addr, from /proc/<pid>/mem. */
export function readMem(pid: number, addr: number, length: number): Buffer {
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const bytes = fs.readSync(fd, buffer, 0, length, addr);
    if (bytes !== length) throw new Error(`short read of /proc/${pid}/mem at 0x${addr.toString(16)}: ${bytes} of ${length}`);
    return buffer;
  } finally {
    fs.closeSync(fd);
  }
}

export interface TaskStatus {
  tid: number;
  /** The one-letter state: R, S, D, T (stopped), t (tracing stop), Z, ... */
  state: string;
  tracerPid: number;
}

function parseStatus(text: string, tid: number): TaskStatus {
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(text);
    if (!match) throw new Error(`no ${name} in status of task ${tid}`);
    return match[1];
  };
  return { tid, state: field('State'), tracerPid: Number(field('TracerPid')) };
}

export function taskStatus(pid: number, tid = pid): TaskStatus {
  return parseStatus(fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'), tid);
}

/** Status of every thread of the thread group. */
export function threadStatuses(pid: number): TaskStatus[] {
  return fs.readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b).map((tid) => taskStatus(pid, tid));
}

/** The owner of the /proc/<pid> directory: the process's euid/egid, whether dumpable or not. */
export function procOwner(pid: number): { uid: number; gid: number } {
  const stat = fs.statSync(`/proc/${pid}`);
  return { uid: stat.uid, gid: stat.gid };
}

/**
 * The owner the kernel gives a process's /proc files, /proc/<pid>/mem among them: its euid/egid,
 * or root when it is not dumpable. (The /proc/<pid> directory itself is exempt from the
 * non-dumpable rule, so it is no guide for a file that holds the process's memory.)
 */
export function procFileOwner(pid: number): { uid: number; gid: number } {
  const stat = fs.statSync(`/proc/${pid}/mem`);
  return { uid: stat.uid, gid: stat.gid };
}

/** Fields of /proc/<pid>/stat after the command name, numbered as in proc(5) (field 3 = state). */
export function procStatFields(pid: number): string[] {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).trim().split(' ');
  return ['', String(pid), '', ...rest];
}

export function startTime(pid: number): number {
  return Number(procStatFields(pid)[22]);
}

/** pause(2)'s number on x86_64: a target that waits for a signal sits in it (procSyscall). */
export const SYS_PAUSE = 34;

/**
 * /proc/<pid>/syscall of a blocked task: the syscall number (-1 if not in one) and its
 * user stack pointer and program counter.
 */
export function procSyscall(pid: number): { nr: number; sp: bigint; pc: bigint } | undefined {
  const fields = fs.readFileSync(`/proc/${pid}/syscall`, 'utf8').trim().split(' ');
  if (fields[0] === 'running') return undefined;
  return { nr: Number(fields[0]), sp: BigInt(fields[fields.length - 2]), pc: BigInt(fields[fields.length - 1]) };
}

/** Whether /proc/<pid> exists and is not a zombie. */
/** The command name of pid, or undefined once it is gone. */
export function commOf(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function isLive(pid: number): boolean {
  try {
    return taskStatus(pid).state !== 'Z';
  } catch {
    return false;
  }
}

// What a dump must contain, derived from /proc by the rules.

/** A VMA with no backing file: anonymous memory and the kernel's special mappings. */
export function isFileless(entry: MapsEntry): boolean {
  return entry.inode === 0;
}

export function expectedProt(entry: MapsEntry): number {
  return (entry.perms[0] === 'r' ? PROT_READ : 0) | (entry.perms[1] === 'w' ? PROT_WRITE : 0) |
    (entry.perms[2] === 'x' ? PROT_EXEC : 0);
}

export function expectedFlags(entry: MapsEntry): number {
  return (isFileless(entry) ? MAP_ANONYMOUS : 0) | (entry.perms[3] === 's' ? MAP_SHARED : MAP_PRIVATE);
}

/** Whether the dump carries this VMA's pages: private, and readable by design. */
export function isDumpedVma(entry: MapsEntry, vmFlags: Set<string> | undefined): boolean {
  const flags = vmFlags ?? new Set<string>();
  if (flags.has('io') || flags.has('pf') || entry.name.startsWith('[vvar')) return false;
  return isFileless(entry) || !flags.has('sh');
}

/** The present or swapped pages of the dumped VMAs, in address order. */
export function expectedPages(pid: number): number[] {
  const vmFlags = readVmFlags(pid);
  return readMaps(pid).filter((entry) => isDumpedVma(entry, vmFlags.get(entry.start)))
    .flatMap((entry) => residentPages(pid, entry.start, entry.end));
}

/** What the pattern target (targets/pattern.c) writes in every 8-byte word: its address XOR this. */
export const PATTERN_KEY = 0x5a17c0de2b4d9e61n;

/** The page the pattern target holds at vaddr. */
export function patternPage(vaddr: number): Buffer {
  const page = Buffer.alloc(PAGE_SIZE);
  for (let i = 0; i < PAGE_SIZE; i += 8) page.writeBigUInt64LE(BigInt(vaddr + i) ^ PATTERN_KEY, i);
  return page;
}
