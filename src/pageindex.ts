// The pages a snapshot carries, stored as runs of consecutive pages in typed arrays:
// a 16 GiB target costs 24 bytes per run, never an object per page.

import { PAGE_SIZE } from './model.js';

export class PageIndex {
  /** Start address of each run, ascending. */
  readonly starts: Float64Array;
  /** Pages in each run. */
  readonly counts: Float64Array;
  /** Pages in all runs before each run: the run's first page number in the index. */
  readonly before: Float64Array;
  readonly runCount: number;
  readonly totalPages: number;

  constructor(starts: Float64Array, counts: Float64Array, runCount: number) {
    this.starts = starts;
    this.counts = counts;
    this.runCount = runCount;
    this.before = new Float64Array(runCount);
    let total = 0;
    for (let i = 0; i < runCount; i++) {
      this.before[i] = total;
      total += counts[i];
    }
    this.totalPages = total;
  }

  static readonly empty = new PageIndex(new Float64Array(0), new Float64Array(0), 0);

  runEnd(run: number): number {
    return this.starts[run] + this.counts[run] * PAGE_SIZE;
  }

  /** Index of the last run starting at or below addr, or -1. */
  runAtOrBefore(addr: number): number {
    let lo = 0;
    let hi = this.runCount - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.starts[mid] <= addr) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /** Index of the run holding page number k (0 <= k < totalPages). */
  runOfPage(k: number): number {
    let lo = 0;
    let hi = this.runCount - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.before[mid] <= k) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Address of page number k. */
  pageAddress(k: number): number {
    const run = this.runOfPage(k);
    return this.starts[run] + (k - this.before[run]) * PAGE_SIZE;
  }

  has(addr: number): boolean {
    const run = this.runAtOrBefore(addr);
    return run >= 0 && addr < this.runEnd(run);
  }

  /** Pages of the index inside [start, end). */
  pagesIn(start: number, end: number): number {
    return this.pagesBelow(end) - this.pagesBelow(start);
  }

  /** Pages of the index below addr. */
  pagesBelow(addr: number): number {
    const run = this.runAtOrBefore(addr);
    if (run < 0) return 0;
    const inRun = Math.min(this.counts[run], Math.ceil((addr - this.starts[run]) / PAGE_SIZE));
    return this.before[run] + inRun;
  }

  /** The runs clipped to [start, end), in order. */
  *runsIn(start: number, end: number): Generator<[number, number]> {
    let run = Math.max(0, this.runAtOrBefore(start));
    for (; run < this.runCount && this.starts[run] < end; run++) {
      const s = Math.max(start, this.starts[run]);
      const e = Math.min(end, this.runEnd(run));
      if (s < e) yield [s, e];
    }
  }

  /** The index restricted to [start, end) ranges (ascending, disjoint). */
  restrict(ranges: Iterable<[number, number]>): PageIndex {
    const builder = new PageIndexBuilder();
    for (const [start, end] of ranges) {
      for (const [s, e] of this.runsIn(start, end)) builder.add(s, e);
    }
    return builder.build();
  }
}

/** The parts of [start, end) outside runs ([start, end) pairs, ascending, disjoint), in order. */
export function gapsOf(start: number, end: number, runs: ReadonlyArray<readonly [number, number]>): Array<[number, number]> {
  const gaps: Array<[number, number]> = [];
  let from = start;
  for (const [s, e] of runs) {
    if (e <= from) continue;
    if (s >= end) break;
    if (s > from) gaps.push([from, s]);
    from = Math.max(from, e);
  }
  if (from < end) gaps.push([from, end]);
  return gaps;
}

/** Collects page ranges in ascending order, merging ranges that touch. */
export class PageIndexBuilder {
  private starts: Float64Array = new Float64Array(64);
  private counts: Float64Array = new Float64Array(64);
  private n = 0;

  /** Adds the pages of [start, end); both page-aligned, start at or above every earlier end. */
  add(start: number, end: number): void {
    if (end <= start) return;
    if (start % PAGE_SIZE !== 0 || end % PAGE_SIZE !== 0) {
      throw new RangeError(`page range ${start.toString(16)}-${end.toString(16)} is not page-aligned`);
    }
    const last = this.n - 1;
    if (last >= 0) {
      const lastEnd = this.starts[last] + this.counts[last] * PAGE_SIZE;
      if (start < lastEnd) throw new RangeError(`page range ${start.toString(16)} is out of order`);
      if (start === lastEnd) {
        this.counts[last] += (end - start) / PAGE_SIZE;
        return;
      }
    }
    if (this.n === this.starts.length) {
      this.starts = grow(this.starts);
      this.counts = grow(this.counts);
    }
    this.starts[this.n] = start;
    this.counts[this.n] = (end - start) / PAGE_SIZE;
    this.n++;
  }

  build(): PageIndex {
    return new PageIndex(this.starts.slice(0, this.n), this.counts.slice(0, this.n), this.n);
  }
}

function grow(a: Float64Array): Float64Array {
  const b = new Float64Array(a.length * 2);
  b.set(a);
  return b;
}
