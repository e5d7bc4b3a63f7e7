// Which pages of a process are present or swapped, as a PageIndex.
// PAGEMAP_SCAN (Linux >= 6.7) returns whole runs per entry, so a sparse 64 GiB mapping
// costs a few page-table walks; reading /proc/<pid>/pagemap (8 bytes per virtual page)
// is the fallback for kernels without it. DataExtents tells which pages of a shared mapping hold
// data in the object it maps, which page tables cannot.

import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import koffi from 'koffi';
import { PAGE_SIZE, type Vma } from '../model.js';
import { PageIndex, PageIndexBuilder } from '../pageindex.js';
import { NativeError } from '../ptrace/errors.js';
import { libc, nativeError, rawIoctl } from '../ptrace/libc.js';
import { fromWords } from '../u64.js';

const lseek = libc.func('int64_t lseek(int fd, int64_t offset, int whence)');
const SEEK_DATA = 3;
const SEEK_HOLE = 4;

// include/uapi/linux/fs.h: the page categories of PAGEMAP_SCAN.
export const PAGE_IS_FILE = 1n << 2n;
export const PAGE_IS_PRESENT = 1n << 3n;
export const PAGE_IS_SWAPPED = 1n << 4n;
export const PAGE_IS_PFNZERO = 1n << 5n;
/** A guard page (MADV_GUARD_INSTALL, Linux >= 6.13): no memory, a fault on access. Counted as swapped too. */
export const PAGE_IS_GUARD = 1n << 8n;
const PM_SCAN_ARG_SIZE = 96; // struct pm_scan_arg: twelve __u64
const PAGE_REGION_SIZE = 24; // struct page_region: start, end, categories
const PAGEMAP_SCAN = iowr('f', 16, PM_SCAN_ARG_SIZE);

const REGIONS_PER_CALL = 4096;
const PAGEMAP_ENTRIES_PER_READ = 65536;
// In the high 32-bit word of a (little-endian) pagemap entry: bit 63 present, bit 62 swapped,
// bit 58 a guard page (which shows as swapped too).
const PAGEMAP_PRESENT_OR_SWAPPED = 0xc0000000;
const PAGEMAP_GUARD = 0x04000000;

const { EINVAL, ENOTTY, EOPNOTSUPP, ESRCH, ENXIO } = osConstants.errno;
/** What PAGEMAP_SCAN fails with on kernels (or pagemap files) that lack it. */
const UNSUPPORTED = new Set([EINVAL, ENOTTY, EOPNOTSUPP]);

/**
 * The present or swapped pages inside ranges (page-aligned, ascending, disjoint).
 * Uses PAGEMAP_SCAN, falling back to reading pagemap where the kernel lacks the ioctl.
 * PAGEMAP_SCAN skips VM_PFNMAP mappings, the pagemap file does not: callers leave those out.
 */
export function scanPages(pid: number, ranges: Array<[number, number]>): PageIndex {
  try {
    return scanPagesWithIoctl(pid, ranges);
  } catch (error) {
    if (error instanceof NativeError && UNSUPPORTED.has(error.errno)) {
      return scanPagesWithPagemap(pid, ranges);
    }
    throw error;
  }
}

/** Which pages a scan asks for: those in none of `inverted`'s categories and... (struct pm_scan_arg). */
export interface PageQuery {
  /** Categories that count when absent. */
  inverted: bigint;
  /** Every one of these must hold (after inversion). */
  mask: bigint;
  /** At least one of these must hold. */
  anyOf: bigint;
}

/**
 * Present or swapped pages but guard pages: the pages a snapshot carries. A guard page has no
 * bytes to carry (a read of it faults) and reads as zeros in a core, as in the kernel's.
 */
export const PRESENT_OR_SWAPPED: PageQuery = { inverted: PAGE_IS_GUARD, mask: PAGE_IS_GUARD, anyOf: PAGE_IS_PRESENT | PAGE_IS_SWAPPED };
/** The same where the kernel knows no guard pages (before 6.14), which refuses the category. */
const PRESENT_OR_SWAPPED_BEFORE_GUARDS: PageQuery = { inverted: 0n, mask: 0n, anyOf: PAGE_IS_PRESENT | PAGE_IS_SWAPPED };
/** Whether PAGEMAP_SCAN knows PAGE_IS_GUARD here; undefined until first asked. */
let guardCategoryKnown: boolean | undefined;

function scanArg(query: PageQuery, vec: Buffer, regions: number, maxPages: number): Buffer {
  const arg = Buffer.alloc(PM_SCAN_ARG_SIZE);
  arg.writeBigUInt64LE(BigInt(PM_SCAN_ARG_SIZE), 0);
  arg.writeBigUInt64LE(koffi.address(vec), 40);
  arg.writeBigUInt64LE(BigInt(regions), 48);
  arg.writeBigUInt64LE(BigInt(maxPages), 56);
  arg.writeBigUInt64LE(query.inverted, 64);
  arg.writeBigUInt64LE(query.mask, 72);
  arg.writeBigUInt64LE(query.anyOf, 80);
  arg.writeBigUInt64LE(query.anyOf, 88); // return_mask
  return arg;
}

function scanRange(fd: number, pid: number, arg: Buffer, start: number, end: number): number {
  arg.writeBigUInt64LE(BigInt(start), 16);
  arg.writeBigUInt64LE(BigInt(end), 24);
  const regions = rawIoctl(fd, PAGEMAP_SCAN, arg) as number;
  if (regions < 0) throw nativeError(koffi.errno(), `ioctl(/proc/${pid}/pagemap, PAGEMAP_SCAN)`, `${hex(start)}-${hex(end)}`);
  return regions;
}

/** Touching ranges up to this many bytes together are scanned whole, not asked one by one. */
const WHOLE_SCAN_MAX_BYTES = 256 * 1024 * 1024;

/**
 * For each range, whether it holds a page matching query: one PAGEMAP_SCAN call that stops at the
 * first such page; or, for a run of touching ranges (a mapping split into many VMAs) no larger
 * than WHOLE_SCAN_MAX_BYTES, one scan of them all, which costs one call instead of one per range.
 * Throws NativeError (EINVAL, ENOTTY, EOPNOTSUPP) where the kernel lacks the ioctl.
 */
export function rangesWithPages(pid: number, ranges: Array<[number, number]>, query: PageQuery): boolean[] {
  const vec = Buffer.alloc(PAGE_REGION_SIZE);
  const arg = scanArg(query, vec, 1, 1);
  const runs = touchingRuns(ranges);
  const span = ([first, last]: [number, number]): [number, number] => [ranges[first][0], ranges[last][1]];
  const scannedWhole = (run: [number, number]) => run[1] > run[0] && span(run)[1] - span(run)[0] <= WHOLE_SCAN_MAX_BYTES;
  const found: boolean[] = [];
  withPagemap(pid, (fd) => {
    const pages = scanWithIoctl(fd, pid, runs.filter(scannedWhole).map(span), query);
    for (const run of runs) {
      const whole = scannedWhole(run);
      for (let i = run[0]; i <= run[1]; i++) {
        const [start, end] = ranges[i];
        found.push(whole ? pages.pagesIn(start, end) > 0 : scanRange(fd, pid, arg, start, end) > 0);
      }
    }
  });
  return found;
}

export function scanPagesWithIoctl(pid: number, ranges: Array<[number, number]>): PageIndex {
  const spans = spansOf(ranges);
  let pages = PageIndex.empty;
  withPagemap(pid, (fd) => {
    if (guardCategoryKnown !== false) {
      try {
        pages = scanWithIoctl(fd, pid, spans, PRESENT_OR_SWAPPED);
        guardCategoryKnown = true;
        return;
      } catch (error) {
        if (guardCategoryKnown || !(error instanceof NativeError) || error.errno !== EINVAL) throw error;
        guardCategoryKnown = false;
      }
    }
    pages = scanWithIoctl(fd, pid, spans, PRESENT_OR_SWAPPED_BEFORE_GUARDS);
  });
  return pages;
}

const GUARD_PAGES: PageQuery = { inverted: 0n, mask: PAGE_IS_GUARD, anyOf: PAGE_IS_GUARD };

/**
 * The runs of guard pages (MADV_GUARD_INSTALL) inside ranges, as [start, end) pairs, ascending;
 * none where PAGEMAP_SCAN does not know them (a kernel before 6.14, where a process has none, or
 * before 6.7, without the ioctl).
 */
export function guardPageRuns(pid: number, ranges: Array<[number, number]>): Array<[number, number]> {
  if (guardCategoryKnown === false) return [];
  let guards = PageIndex.empty;
  try {
    withPagemap(pid, (fd) => {
      guards = scanWithIoctl(fd, pid, spansOf(ranges), GUARD_PAGES);
    });
  } catch (error) {
    if (error instanceof NativeError && UNSUPPORTED.has(error.errno)) return [];
    throw error;
  }
  return Array.from({ length: guards.runCount }, (_, run): [number, number] => [guards.starts[run], guards.runEnd(run)]);
}

function scanWithIoctl(fd: number, pid: number, spans: Array<[number, number]>, query: PageQuery): PageIndex {
  const builder = new PageIndexBuilder();
  const vec = Buffer.alloc(REGIONS_PER_CALL * PAGE_REGION_SIZE);
  const arg = scanArg(query, vec, REGIONS_PER_CALL, 0);
  for (const [rangeStart, end] of spans) {
    // Every page below `reported` has been added to the builder.
    for (let reported = rangeStart; reported < end; ) {
      const regions = scanRange(fd, pid, arg, reported, end);
      const resumedAt = reported;
      for (let i = 0; i < regions; i++) {
        const regionEnd = readU64(vec, i * PAGE_REGION_SIZE + 8);
        if (regionEnd <= reported) continue;
        builder.add(Math.max(reported, readU64(vec, i * PAGE_REGION_SIZE)), regionEnd);
        reported = regionEnd;
      }
      // A vec with room left means the walk reached end. Only a full vec makes walk_end
      // meaningful: on 6.18 a call that completes can leave walk_end at an earlier point
      // where the kernel's own buffer filled.
      if (regions < REGIONS_PER_CALL) break;
      reported = Math.max(reported, readU64(arg, 32));
      if (reported <= resumedAt) {
        throw new Error(`PAGEMAP_SCAN of pid ${pid} made no progress at ${hex(resumedAt)}`);
      }
    }
  }
  return builder.build();
}

export function scanPagesWithPagemap(pid: number, ranges: Array<[number, number]>): PageIndex {
  const spans = spansOf(ranges);
  const builder = new PageIndexBuilder();
  const buffer = Buffer.alloc(PAGEMAP_ENTRIES_PER_READ * 8);
  const words = new Uint32Array(buffer.buffer, buffer.byteOffset, buffer.length / 4);

  withPagemap(pid, (fd) => {
    for (const [rangeStart, end] of spans) {
      for (let chunk = rangeStart; chunk < end; chunk += PAGEMAP_ENTRIES_PER_READ * PAGE_SIZE) {
        const entries = Math.min(PAGEMAP_ENTRIES_PER_READ, (end - chunk) / PAGE_SIZE);
        readFully(fd, buffer, entries * 8, (chunk / PAGE_SIZE) * 8, pid);
        let runStart = -1;
        for (let i = 0; i < entries; i++) {
          const high = words[i * 2 + 1];
          const hit = (high & PAGEMAP_PRESENT_OR_SWAPPED) !== 0 && (high & PAGEMAP_GUARD) === 0;
          if (hit && runStart < 0) runStart = i;
          if (!hit && runStart >= 0) {
            builder.add(chunk + runStart * PAGE_SIZE, chunk + i * PAGE_SIZE);
            runStart = -1;
          }
        }
        if (runStart >= 0) builder.add(chunk + runStart * PAGE_SIZE, chunk + entries * PAGE_SIZE);
      }
    }
  });
  return builder.build();
}

/**
 * The pages of a shared mapping [start, end) (mapping the object from byte `offset` on) that hold
 * data in that object, touched by this process or not: a shmem page written by another process
 * sharing it, or through a memfd's descriptor, or swapped out, is in no page table of this one,
 * so PAGEMAP_SCAN misses it. The object's data is asked with lseek(SEEK_DATA, SEEK_HOLE) on
 * /proc/<pid>/map_files/<start>-<end>, the mapped object itself (shmem counts pages in memory and
 * in swap as data; a file its extents, never beyond its end), once per object (device and inode)
 * for one DataExtents: a process may map one object thousands of times. null when map_files
 * cannot be opened (it needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE) or its file system cannot tell.
 */
export class DataExtents {
  /** By "dev:inode": the object's data as page-aligned [from, to) byte ranges, ascending; null: unknown. */
  private readonly objects = new Map<string, number[][] | null>();

  constructor(private readonly pid: number) {}

  pagesOf(vma: Pick<Vma, 'start' | 'end' | 'offset' | 'dev' | 'inode'>): PageIndex | null {
    const key = `${vma.dev}:${vma.inode}`;
    if (!this.objects.has(key)) this.objects.set(key, objectData(`/proc/${this.pid}/map_files/${vma.start.toString(16)}-${vma.end.toString(16)}`));
    const extents = this.objects.get(key)!;
    return extents && pagesIn(extents, vma.start, vma.end, vma.offset);
  }
}

/** Every data extent of the object the mapping file at path maps, widened to whole pages. */
function objectData(path: string): number[][] | null {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const extents: number[][] = [];
    for (let pos = 0; ;) {
      const data = lseek(fd, pos, SEEK_DATA) as number;
      if (data < 0) {
        const errno = koffi.errno();
        if (errno === ENXIO) break; // no data at or after pos
        if (errno === EINVAL) return null; // a file system without SEEK_DATA
        throw nativeError(errno, `lseek(${path}, SEEK_DATA)`, hex(pos));
      }
      const hole = lseek(fd, data, SEEK_HOLE) as number;
      if (hole < 0) throw nativeError(koffi.errno(), `lseek(${path}, SEEK_HOLE)`, hex(data));
      // Extents of a file with blocks smaller than a page: whole pages, each once.
      const from = Math.max(extents.at(-1)?.[1] ?? 0, data - (data % PAGE_SIZE));
      const to = Math.ceil(hole / PAGE_SIZE) * PAGE_SIZE;
      if (to > from) extents.push([from, to]);
      pos = hole;
    }
    return extents;
  } finally {
    fs.closeSync(fd);
  }
}

/** The pages of [start, end), mapping the object from byte offset, that the extents cover. */
function pagesIn(extents: readonly number[][], start: number, end: number, offset: number): PageIndex {
  const builder = new PageIndexBuilder();
  const last = offset + (end - start);
  // The first extent that ends past offset.
  let lo = 0;
  for (let hi = extents.length; lo < hi;) {
    const mid = (lo + hi) >> 1;
    if (extents[mid][1] <= offset) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < extents.length && extents[i][0] < last; i++) {
    const from = Math.max(offset, extents[i][0]);
    const to = Math.min(last, extents[i][1]);
    builder.add(start + (from - offset), start + (to - offset));
  }
  return builder.build();
}

function withPagemap(pid: number, scan: (fd: number) => void): void {
  const fd = fs.openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    scan(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function readFully(fd: number, buffer: Buffer, length: number, position: number, pid: number): void {
  for (let done = 0; done < length; ) {
    const n = fs.readSync(fd, buffer, done, length - done, position + done);
    if (n === 0) {
      // The pagemap file ends early once the process's mm is gone, and at the end of user space.
      throw new NativeError(ESRCH, `read(/proc/${pid}/pagemap)`,
        `ended at page ${hex(((position + done) / 8) * PAGE_SIZE)}: the process has exited or the page is beyond user space`);
    }
    done += n;
  }
}

/**
 * The ranges checked (page-aligned, non-empty, ascending, disjoint) and with touching ones merged:
 * a heap split into thousands of VMAs by mprotect is then one walk, not one call per VMA (each
 * call costs tens of microseconds however few pages it finds).
 */
function spansOf(ranges: Array<[number, number]>): Array<[number, number]> {
  return touchingRuns(ranges).map(([first, last]) => [ranges[first][0], ranges[last][1]]);
}

/** The runs of touching ranges, as [first, last] indices, once the ranges are checked. */
function touchingRuns(ranges: Array<[number, number]>): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  let previousEnd = 0;
  ranges.forEach(([start, end], i) => {
    if (start % PAGE_SIZE !== 0 || end % PAGE_SIZE !== 0 || start >= end || start < previousEnd) {
      throw new RangeError(`page range ${hex(start)}-${hex(end)} is not page-aligned, non-empty, ascending and disjoint`);
    }
    const last = runs[runs.length - 1];
    if (last !== undefined && start === previousEnd) last[1] = i;
    else runs.push([i, i]);
    previousEnd = end;
  });
  return runs;
}

/** User addresses are below 2^47, so two 32-bit halves make an exact number. */
function readU64(buffer: Buffer, offset: number): number {
  return fromWords(buffer.readUInt32LE(offset), buffer.readUInt32LE(offset + 4));
}

function iowr(type: string, nr: number, size: number): number {
  const IOC_READ_WRITE = 3;
  return IOC_READ_WRITE * 2 ** 30 + size * 2 ** 16 + type.charCodeAt(0) * 2 ** 8 + nr;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
