// A generated file is a list of extents laid end to end over one frozen snapshot: bytes computed
// once (at the snapshot, or when first read), zeros, the target's memory, or the dump's page
// records. Reading any range is offset arithmetic over that list; only target pages cost I/O,
// batched into one call per read.

import { PAGE_RECORD_HEADER_SIZE, PAGE_RECORD_SIZE } from './format.js';
import { PAGE_SIZE } from './model.js';
import type { PageIndex } from './pageindex.js';
import { highWord } from './u64.js';

/** Bytes held in memory (headers, notes, tables). */
export interface BytesExtent { kind: 'bytes'; offset: number; length: number; data: Buffer }
/**
 * Bytes known by number at the snapshot and made when first read, from the still-frozen task
 * (what costs too much to ask for at every open). produce returns exactly length bytes.
 */
export interface DeferredExtent { kind: 'deferred'; offset: number; length: number; produce: () => Buffer; made?: Buffer }
/** Bytes that are all zero (padding, terminators). */
export interface ZerosExtent { kind: 'zeros'; offset: number; length: number }
/**
 * The target's memory [vaddr, vaddr + length). With `present`, pages outside that index read as
 * zeros without touching the target (holes of anonymous memory); without it every page is read.
 */
export interface MemoryExtent {
  kind: 'memory'; offset: number; length: number; vaddr: number; present: PageIndex | null;
}
/** One record per page of `pages`, in address order: the 8-byte vaddr, then the page. */
export interface RecordsExtent { kind: 'records'; offset: number; length: number; pages: PageIndex }

export type Extent = BytesExtent | DeferredExtent | ZerosExtent | MemoryExtent | RecordsExtent;

/** Where page reads go: collected during one read, then fetched from the target at once. */
export interface PageSource {
  begin(out: Buffer): void;
  add(outOffset: number, vaddr: number, length: number): void;
  commit(): void;
}

export class Layout {
  readonly extents: readonly Extent[];
  readonly size: number;

  constructor(extents: Extent[]) {
    this.extents = extents;
    const last = extents[extents.length - 1];
    this.size = last ? last.offset + last.length : 0;
  }

  /** Index of the extent holding file offset pos (pos < size). */
  extentAt(pos: number): number {
    let lo = 0;
    let hi = this.extents.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.extents[mid].offset <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Fills out[0, length) with the file's bytes at pos; returns the bytes produced (short at EOF). */
  read(out: Buffer, length: number, pos: number, source: PageSource): number {
    const end = Math.min(pos + length, this.size);
    if (pos >= end) return 0;
    source.begin(out);
    for (let i = this.extentAt(pos); i < this.extents.length; i++) {
      const extent = this.extents[i];
      if (extent.offset >= end) break;
      const from = Math.max(pos, extent.offset);
      const to = Math.min(end, extent.offset + extent.length);
      readExtent(extent, from - extent.offset, to - extent.offset, out, from - pos, source);
    }
    source.commit();
    return end - pos;
  }
}

export class LayoutBuilder {
  private readonly extents: Extent[] = [];
  private offset = 0;

  get size(): number {
    return this.offset;
  }

  bytes(data: Buffer): this {
    return this.push({ kind: 'bytes', offset: this.offset, length: data.length, data });
  }

  deferred(length: number, produce: () => Buffer): this {
    return this.push({ kind: 'deferred', offset: this.offset, length, produce });
  }

  zeros(length: number): this {
    return this.push({ kind: 'zeros', offset: this.offset, length });
  }

  memory(vaddr: number, length: number, present: PageIndex | null): this {
    return this.push({ kind: 'memory', offset: this.offset, length, vaddr, present });
  }

  records(pages: PageIndex): this {
    return this.push({ kind: 'records', offset: this.offset, length: pages.totalPages * PAGE_RECORD_SIZE, pages });
  }

  /** Zeros up to the next multiple of align. */
  alignTo(align: number): this {
    return this.zeros((align - (this.offset % align)) % align);
  }

  build(): Layout {
    return new Layout(this.extents);
  }

  private push(extent: Extent): this {
    if (extent.length > 0) {
      this.extents.push(extent);
      this.offset += extent.length;
    }
    return this;
  }
}

/** Produces extent bytes [from, to) (extent-relative) into out at outPos. */
function readExtent(extent: Extent, from: number, to: number, out: Buffer, outPos: number, source: PageSource): void {
  switch (extent.kind) {
    case 'bytes':
      extent.data.copy(out, outPos, from, to);
      return;
    case 'deferred':
      madeBytes(extent).copy(out, outPos, from, to);
      return;
    case 'zeros':
      out.fill(0, outPos, outPos + (to - from));
      return;
    case 'memory':
      readMemory(extent, from, to, out, outPos, source);
      return;
    case 'records':
      readRecords(extent.pages, from, to, out, outPos, source);
  }
}

function madeBytes(extent: DeferredExtent): Buffer {
  if (!extent.made) {
    const made = extent.produce();
    if (made.length !== extent.length) throw new Error(`deferred extent at ${extent.offset}: ${made.length} bytes made, ${extent.length} promised`);
    extent.made = made;
  }
  return extent.made;
}

function readMemory(extent: MemoryExtent, from: number, to: number, out: Buffer, outPos: number, source: PageSource): void {
  const start = extent.vaddr + from;
  const end = extent.vaddr + to;
  if (!extent.present) {
    source.add(outPos, start, end - start);
    return;
  }
  let cursor = start;
  for (const [s, e] of extent.present.runsIn(start, end)) {
    if (s > cursor) out.fill(0, outPos + (cursor - start), outPos + (s - start));
    source.add(outPos + (s - start), s, e - s);
    cursor = e;
  }
  if (cursor < end) out.fill(0, outPos + (cursor - start), outPos + (end - start));
}

const headerScratch = Buffer.alloc(PAGE_RECORD_HEADER_SIZE);

function readRecords(pages: PageIndex, from: number, to: number, out: Buffer, outPos: number, source: PageSource): void {
  let page = Math.floor(from / PAGE_RECORD_SIZE);
  let run = pages.runOfPage(page);
  let pos = from;
  while (pos < to) {
    while (page >= pages.before[run] + pages.counts[run]) run++;
    const vaddr = pages.starts[run] + (page - pages.before[run]) * PAGE_SIZE;
    const recordStart = page * PAGE_RECORD_SIZE;
    const inRecord = pos - recordStart;
    const recordEnd = Math.min(to, recordStart + PAGE_RECORD_SIZE);
    if (inRecord === 0 && recordEnd - recordStart >= PAGE_RECORD_HEADER_SIZE) {
      // The whole header: written in place (a native copy per page costs more than the page's
      // share of the read).
      out.writeUInt32LE(vaddr >>> 0, outPos + (pos - from));
      out.writeUInt32LE(highWord(vaddr), outPos + (pos - from) + 4);
      pos = recordStart + PAGE_RECORD_HEADER_SIZE;
    } else if (inRecord < PAGE_RECORD_HEADER_SIZE) {
      headerScratch.writeUInt32LE(vaddr >>> 0, 0);
      headerScratch.writeUInt32LE(highWord(vaddr), 4);
      const headerEnd = Math.min(PAGE_RECORD_HEADER_SIZE, recordEnd - recordStart);
      headerScratch.copy(out, outPos + (pos - from), inRecord, headerEnd);
      pos = recordStart + headerEnd;
    }
    if (pos < recordEnd) {
      const pageOffset = pos - recordStart - PAGE_RECORD_HEADER_SIZE;
      source.add(outPos + (pos - from), vaddr + pageOffset, recordEnd - pos);
      pos = recordEnd;
    }
    page++;
  }
}
