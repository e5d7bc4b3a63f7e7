// Reading an image front to back, once, in bounded memory: the one parser of the image format.
// `imgfs show` and `imgfs restore` both go through it. Every structural rule of the format is
// checked as the bytes arrive, and the first violation is an ImageFormatError naming its byte
// offset. The page records, v0's and those of the extension's SHARED_PAGES records, come out in
// batches that stay inside the chunks they arrived in, so gigabytes of pages pass through without
// being copied in between; a source that can scatter (restore's input, with readv) reads v0's
// page records straight into place instead, the pages back to back. Of the extension only its
// other records' values are kept.

import { createReadStream, fstatSync } from 'node:fs';
import { isatty } from 'node:tty';
import {
  EXTENSION_HEADER_SIZE, ExtensionDecoder, ExtensionFormatError, RECORD_HEADER_SIZE, RecordType, SHARED_PAGES_FIXED_SIZE,
  decodeExtensionHeader,
} from './extension.js';
import type { ImageExtension } from './extension-model.js';
import {
  FormatError, HEADER_SIZE, IMG_MAGIC, IMG_VERSION_0, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, MM_SIZE,
  PAGE_RECORD_SIZE, PAGE_SIZE_BIGINT, PROT_EXEC, PROT_READ, PROT_WRITE, REGS_OFFSETS, REGS_SIZE, SEGMENT_FIELDS,
  TRAILER_SIZE, VMA_OFFSETS, VMA_SIZE, decodeHeader, decodeMm, decodeRegs, decodeSegment, decodeVma,
} from './format.js';
import type { DecodedHeader, DecodedMm, DecodedRegs, DecodedVma } from './format.js';
import { PAGE_SIZE } from './model.js';
import { maxMapCount } from './proc/mapcount.js';
import { fromWords } from './u64.js';

/** A path, an open file descriptor (left open), or the image's bytes as a sequence of chunks. */
export type ImageSource = string | number | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** Page records read apart: each record's address word in `words`, its page in `pages`. */
export interface ScatteredRecords {
  /** Record i's 8-byte address word at i * 8. */
  words: Buffer;
  /** Record i's page at i * PAGE_SIZE. */
  pages: Buffer;
  /** The image bytes read, in stream order: as many records as fit, the last one possibly cut. */
  bytes: number;
}

/**
 * As many page records as the source's buffers hold, laid out apart: first the bytes of `start`
 * (bytes of the image the reader had already read, less than a record), then the next bytes of
 * the same stream its chunks come from (readv(2)); fewer only at the end of the input. The
 * buffers stay valid until the reader is asked for more.
 */
export type RecordScatter = (start: Buffer) => Promise<ScatteredRecords>;

/** A structural problem in an image, at a byte offset of the image. */
export class ImageFormatError extends Error {
  readonly offset: number;
  constructor(offset: number, message: string) {
    super(`byte ${offset}: ${message}`);
    this.name = 'ImageFormatError';
    this.offset = offset;
  }
}

/** Everything before the page records: header, registers, mm, VMA list; all checked. */
export interface ImageHead {
  header: DecodedHeader;
  regs: DecodedRegs;
  mm: DecodedMm;
  vmas: DecodedVma[];
}

/**
 * Consecutive page records, checked: page-aligned, strictly ascending, each inside a VMA (for a
 * SHARED_PAGES record's, all inside the shared VMA of the record).
 */
export interface PageBatch {
  /** Image offset of the first record. */
  offset: number;
  count: number;
  /**
   * Where the pages are: page i at bytes[firstPage + i * stride] (PAGE_RECORD_SIZE apart inside
   * the records as they arrived, or PAGE_SIZE apart when scattered). Valid only until the reader
   * is asked for more.
   */
  bytes: Buffer;
  firstPage: number;
  stride: number;
  /** The page address of each record. */
  vaddrs: Float64Array;
  /** Index into ImageHead.vmas of the VMA holding each record. */
  vmaIndexes: Int32Array;
}

export interface ImageExtensionRead {
  /** Image offset of its header. */
  offset: number;
  length: number;
  version: number;
  content: ImageExtension;
}

const READ_CHUNK = 1 << 20;

/**
 * The most VMA records an image is read with: a process has at most vm.max_map_count VMAs (65530
 * by default; 262144 where a database asks for more), and each record read is held, a few hundred
 * bytes of ours: a list of millions would exhaust our memory before its end is seen.
 */
export function maxImageVmas(): number {
  return Math.max(MAX_MAP_COUNT_RAISED, maxMapCount());
}

const MAX_MAP_COUNT_RAISED = 262144;

/**
 * Why standard input cannot be read as an image, for `command -`; undefined when it can. On a
 * terminal it would wait for an image to be typed in; a directory would read as nothing.
 */
export function standardInputProblem(command: string): string | undefined {
  if (isatty(0)) return `standard input is a terminal, not an image: pipe one in (cat task.img | ${command} -) or name its file`;
  try {
    if (fstatSync(0).isDirectory()) return 'standard input is a directory, not an image (EISDIR)';
  } catch {
    // Closed: it reads as nothing, which the reader calls an empty image.
  }
  return undefined;
}

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

/**
 * Sequential reader over chunks. A request that fits in the current chunk is a view into it; one
 * that straddles chunks is assembled in a buffer of its own size, so no chunk is ever copied
 * whole. A view stays valid until the next fill(): a chunk source may reuse its buffers.
 */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** The unread rest of a chunk of which a straddling request took the beginning. */
  private rest: Buffer | null = null;
  private done = false;
  /** Image offset of the next unread byte. */
  offset = 0;

  constructor(private readonly chunks: AsyncIterator<Uint8Array> | Iterator<Uint8Array>) {}

  /** Bytes available without reading more. */
  get available(): number {
    return this.buf.length - this.pos;
  }

  /**
   * For a caller that goes on reading from the source itself: the bytes this reader still holds
   * (a copy), when they are fewer than `limit` and no chunk lies beyond them; it then holds none.
   * Null otherwise. The caller accounts for what it reads with passOver and unread.
   */
  handOff(limit: number): Buffer | null {
    if (this.rest !== null || this.available >= limit) return null;
    const held = Buffer.from(this.peek());
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    return held;
  }

  /** Counts n bytes of the image as read (by the caller handed off to). */
  passOver(n: number): void {
    this.offset += n;
  }

  /** Puts bytes the caller handed off to read but does not want back in front of the source's. */
  unread(bytes: Buffer): void {
    if (this.available > 0 || this.rest !== null) throw new Error('ByteReader.unread while bytes are still buffered');
    this.buf = bytes;
    this.pos = 0;
  }

  private async nextChunk(): Promise<Buffer | null> {
    if (this.rest) {
      const rest = this.rest;
      this.rest = null;
      return rest;
    }
    while (!this.done) {
      const next = await this.chunks.next();
      if (next.done) {
        this.done = true;
        break;
      }
      if (next.value.byteLength > 0) return Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    }
    return null;
  }

  /** Makes up to n bytes available contiguously; returns how many (fewer only at end of input). */
  async fill(n: number): Promise<number> {
    if (this.available >= n) return n;
    if (this.available === 0) {
      const chunk = await this.nextChunk();
      if (!chunk) return 0;
      this.buf = chunk;
      this.pos = 0;
      if (chunk.length >= n) return n;
    }
    const assembled = Buffer.allocUnsafe(n);
    let filled = this.buf.copy(assembled, 0, this.pos);
    while (filled < n) {
      const chunk = await this.nextChunk();
      if (!chunk) break;
      const used = chunk.copy(assembled, filled, 0, n - filled);
      filled += used;
      if (used < chunk.length) this.rest = chunk.subarray(used);
    }
    this.buf = assembled.subarray(0, filled);
    this.pos = 0;
    return filled;
  }

  /** Every byte available without reading more. */
  peek(): Buffer {
    return this.buf.subarray(this.pos);
  }

  /** The next n bytes, which fill() must have made available. */
  take(n: number): Buffer {
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.offset += n;
    return out;
  }

  /** Consumes the rest of the input; returns how many bytes that was. */
  async drain(): Promise<number> {
    let count = this.available;
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    for (let chunk = await this.nextChunk(); chunk; chunk = await this.nextChunk()) count += chunk.length;
    this.offset += count;
    return count;
  }
}

function openChunks(source: ImageSource): AsyncIterator<Uint8Array> | Iterator<Uint8Array> {
  if (typeof source === 'string' || typeof source === 'number') {
    const stream = typeof source === 'string'
      ? createReadStream(source, { highWaterMark: READ_CHUNK })
      : createReadStream('', { fd: source, autoClose: false, highWaterMark: READ_CHUNK });
    return stream[Symbol.asyncIterator]();
  }
  if (Symbol.asyncIterator in source) return source[Symbol.asyncIterator]();
  return source[Symbol.iterator]();
}

const KNOWN_PROT = PROT_READ | PROT_WRITE | PROT_EXEC;
/** "\x7fELF", read as a little-endian u32. */
const ELF_MAGIC = 0x464c457f;
const KNOWN_MAP = MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS;

function checkHeader(header: DecodedHeader): void {
  if (header.magic !== IMG_MAGIC) {
    // An ELF file (a core, say) read where a dump image was meant.
    const elf = header.magic === ELF_MAGIC ? ': this is an ELF file (a core?), not a dump image' : '';
    throw new ImageFormatError(0, `bad magic ${hex(header.magic)}, expected ${hex(IMG_MAGIC)}${elf}`);
  }
  if (header.version !== IMG_VERSION_0) {
    throw new ImageFormatError(4, `unsupported version ${hex(header.version)}, expected ${hex(IMG_VERSION_0)}`);
  }
}

function checkRegs(regs: DecodedRegs, at: number): void {
  for (const field of SEGMENT_FIELDS) {
    try {
      decodeSegment(regs[field]);
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      throw new ImageFormatError(at + REGS_OFFSETS[field], `${field}: ${err.message}`);
    }
  }
}

function checkVma(vma: DecodedVma, index: number, at: number, previousEnd: bigint): void {
  const fail = (field: keyof typeof VMA_OFFSETS, message: string): never => {
    throw new ImageFormatError(at + VMA_OFFSETS[field], `vma #${index} ${hex(vma.start)}-${hex(vma.end)}: ${message}`);
  };
  if (vma.prot & ~KNOWN_PROT) fail('prot', `unknown prot bits ${hex(vma.prot)}`);
  if (vma.flags & ~KNOWN_MAP) fail('flags', `unknown flag bits ${hex(vma.flags)}`);
  if (((vma.flags & MAP_SHARED) !== 0) === ((vma.flags & MAP_PRIVATE) !== 0)) {
    fail('flags', `flags ${hex(vma.flags)} must hold exactly one of MAP_SHARED and MAP_PRIVATE`);
  }
  if (vma.pad !== 0) fail('pad', `pad is ${hex(vma.pad)}, expected 0`);
  if (vma.fd !== 0) fail('fd', `fd is ${vma.fd}, expected 0 in v0`);
  if (vma.start % PAGE_SIZE_BIGINT !== 0n) fail('start', 'start is not page-aligned');
  if (vma.end % PAGE_SIZE_BIGINT !== 0n) fail('end', 'end is not page-aligned');
  if (vma.start >= vma.end) fail('end', 'end is not above start');
  if (vma.start < previousEnd) fail('start', `starts below the previous vma's end ${hex(previousEnd)}`);
}

/** The extension being read: its header, and where the reader is in it. */
interface ExtensionState {
  offset: number;
  length: number;
  version: number;
  decoder: ExtensionDecoder;
  /** Page records left in the SHARED_PAGES record being read. */
  pagesLeft: number;
  /** The VMA they lie in. */
  vmaIndex: number;
}

/**
 * An image being read front to back: readHead(), then nextPages() until null, then
 * nextSharedPages() until null (or not: readExtension() passes over the rest), then readExtension().
 */
export class ImageReader {
  private readonly chunks: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  private readonly reader: ByteReader;
  /** VMA bounds as numbers, for the per-record checks. */
  private starts = new Float64Array(0);
  private ends = new Float64Array(0);
  private shared = new Uint8Array(0);
  private vmaIndex = 0;
  private previous = -1;
  private pagesDone = false;
  /** undefined until the extension is reached; null when the image has none. */
  private extension: ExtensionState | null | undefined;

  /** scatter: reads of v0's page records straight into place, from the same stream as source. */
  constructor(source: ImageSource, private readonly scatter?: RecordScatter) {
    this.chunks = openChunks(source);
    this.reader = new ByteReader(this.chunks);
  }

  /** Image offset of the next unread byte. */
  get offset(): number {
    return this.reader.offset;
  }

  private async struct(size: number, what: string): Promise<Buffer> {
    const got = await this.reader.fill(size);
    // Nothing at all (an empty file, /dev/null, a closed pipe) is no image, not a cut one.
    if (got === 0 && this.reader.offset === 0) throw new ImageFormatError(0, 'the image is empty (0 bytes)');
    if (got < size) {
      throw new ImageFormatError(this.reader.offset, `image ends inside the ${what} (expected ${size} bytes, got ${got})`);
    }
    return this.reader.take(size);
  }

  async readHead(): Promise<ImageHead> {
    const header = decodeHeader(await this.struct(HEADER_SIZE, 'header'));
    checkHeader(header);
    const regsAt = this.reader.offset;
    const regs = decodeRegs(await this.struct(REGS_SIZE, 'registers'));
    checkRegs(regs, regsAt);
    const mm = decodeMm(await this.struct(MM_SIZE, 'mm record'));
    const vmas: DecodedVma[] = [];
    const maxVmas = maxImageVmas();
    for (;;) {
      const at = this.reader.offset;
      const record = await this.struct(VMA_SIZE, 'vma list before its zero record');
      if (record.every((b) => b === 0)) break;
      if (vmas.length === maxVmas) throw new ImageFormatError(at, `more than ${maxVmas} VMAs: no process has that many (vm.max_map_count)`);
      const vma = decodeVma(record);
      checkVma(vma, vmas.length, at, vmas.length > 0 ? vmas[vmas.length - 1].end : 0n);
      vmas.push(vma);
    }
    // Page records are checked against numbers: an end beyond 2^53 only loses precision where
    // no page record can be anyway (they are checked to lie below 2^53).
    this.starts = Float64Array.from(vmas, (v) => Number(v.start));
    this.ends = Float64Array.from(vmas, (v) => Number(v.end));
    this.shared = Uint8Array.from(vmas, (v) => v.flags & MAP_SHARED);
    return { header, regs, mm, vmas };
  }

  /**
   * The next page records, as many as lie whole in the bytes at hand (at least one), or null
   * once the terminator has been read.
   */
  async nextPages(): Promise<PageBatch | null> {
    if (this.pagesDone) return null;
    const start = this.scatter ? this.reader.handOff(PAGE_RECORD_SIZE) : null;
    if (start) {
      const batch = await this.scatteredPages(this.scatter!, start);
      if (batch) return batch;
    }
    const reader = this.reader;
    const got = await reader.fill(PAGE_RECORD_SIZE);
    const offset = reader.offset;
    if (got < TRAILER_SIZE) {
      throw new ImageFormatError(offset, `image ends before the terminator (expected a page record or ${TRAILER_SIZE} zero bytes, got ${got} bytes)`);
    }
    const view = reader.peek();
    const first = this.vaddrAt(view, 0, offset);
    if (first === null) {
      reader.take(TRAILER_SIZE);
      this.pagesDone = true;
      return null;
    }
    if (got < PAGE_RECORD_SIZE) {
      throw new ImageFormatError(offset, `image ends inside a page record (expected ${PAGE_RECORD_SIZE} bytes, got ${got})`);
    }
    const capacity = Math.floor(view.length / PAGE_RECORD_SIZE);
    const vaddrs = new Float64Array(capacity);
    const vmaIndexes = new Int32Array(capacity);
    let count = 0;
    for (let vaddr: number | null = first; vaddr !== null;) {
      vaddrs[count] = vaddr;
      vmaIndexes[count] = this.vmaIndex;
      this.previous = vaddr;
      count++;
      if (count === capacity) break;
      const at = count * PAGE_RECORD_SIZE;
      vaddr = this.vaddrAt(view, at, offset + at);
    }
    return {
      offset,
      count,
      bytes: reader.take(count * PAGE_RECORD_SIZE),
      firstPage: 8,
      stride: PAGE_RECORD_SIZE,
      vaddrs: vaddrs.subarray(0, count),
      vmaIndexes: vmaIndexes.subarray(0, count),
    };
  }

  /**
   * Page records read apart (their pages back to back), beginning with the bytes the byte reader
   * handed off; what follows the last whole one (the terminator and the extension, or the start
   * of a record cut short) goes back to it. Null when not one whole page record came.
   */
  private async scatteredPages(scatter: RecordScatter, start: Buffer): Promise<PageBatch | null> {
    const offset = this.reader.offset;
    const { words, pages, bytes } = await scatter(start);
    const whole = Math.floor(bytes / PAGE_RECORD_SIZE);
    const vaddrs = new Float64Array(whole);
    const vmaIndexes = new Int32Array(whole);
    let count = 0;
    for (; count < whole; count++) {
      const vaddr = this.vaddrAt(words, count * 8, offset + count * PAGE_RECORD_SIZE);
      if (vaddr === null) break;
      vaddrs[count] = vaddr;
      vmaIndexes[count] = this.vmaIndex;
      this.previous = vaddr;
    }
    const used = count * PAGE_RECORD_SIZE;
    this.reader.passOver(used);
    if (bytes > used) this.reader.unread(interleave(words, pages, count, bytes - used));
    if (count === 0) return null;
    return { offset, count, bytes: pages, firstPage: 0, stride: PAGE_SIZE, vaddrs: vaddrs.subarray(0, count), vmaIndexes: vmaIndexes.subarray(0, count) };
  }

  /** Reads and checks the vaddr word of the record at view[pos] (image offset at); null for the terminator. */
  private vaddrAt(view: Buffer, pos: number, at: number): number | null {
    const low = view.readUInt32LE(pos);
    const high = view.readUInt32LE(pos + 4);
    if (low === 0 && high === 0) return null;
    const vaddr = fromWords(low, high);
    const name = () => hex((BigInt(high) << 32n) | BigInt(low));
    if (low % PAGE_SIZE !== 0) throw new ImageFormatError(at, `page record ${name()} is not page-aligned`);
    // Above 2^53 no address is exact as a number, and none is a user address anyway.
    if (high >= 0x200000) throw new ImageFormatError(at, `page record ${name()} is not inside any VMA`);
    if (vaddr <= this.previous) {
      throw new ImageFormatError(at, `page record ${hex(vaddr)} is not above the previous one ${hex(this.previous)}`);
    }
    while (this.vmaIndex < this.ends.length && this.ends[this.vmaIndex] <= vaddr) this.vmaIndex++;
    if (this.vmaIndex === this.ends.length || vaddr < this.starts[this.vmaIndex]) {
      throw new ImageFormatError(at, `page record ${hex(vaddr)} is not inside any VMA`);
    }
    if (this.shared[this.vmaIndex]) {
      const vma = `${hex(this.starts[this.vmaIndex])}-${hex(this.ends[this.vmaIndex])}`;
      throw new ImageFormatError(at, `page record ${hex(vaddr)} lies in the shared VMA ${vma}: v0 page records are private pages only`);
    }
    return vaddr;
  }

  /**
   * The next page records of the extension's SHARED_PAGES records, as many as lie whole in the
   * bytes at hand (at least one), or null once the extension has none left (or the image has no
   * extension). The extension's other records are read and checked on the way.
   */
  async nextSharedPages(): Promise<PageBatch | null> {
    if (!this.pagesDone) throw new Error('nextSharedPages() before nextPages() has read the terminator');
    try {
      const ext = await this.startExtension();
      if (!ext) return null;
      for (;;) {
        if (ext.pagesLeft > 0) return await this.sharedPagesBatch(ext);
        if (ext.decoder.content) return null;
        await this.extensionRecord(ext);
      }
    } catch (err) {
      if (err instanceof ExtensionFormatError) throw new ImageFormatError(err.offset, err.problem);
      throw err;
    }
  }

  /** The extension after the terminator, if any bytes follow it; nothing may follow it. */
  async readExtension(): Promise<ImageExtensionRead | undefined> {
    while (await this.nextSharedPages()) {
      // Passed over: the pages were checked, nothing more is wanted of them here.
    }
    const ext = this.extension;
    if (!ext) return undefined;
    const after = this.reader.offset;
    const extra = await this.reader.drain();
    if (extra > 0) throw new ImageFormatError(after, `${extra} bytes follow the extension's end`);
    return { offset: ext.offset, length: ext.length, version: ext.version, content: ext.decoder.content! };
  }

  /** Reads the extension header the first time; null when the image ends at the terminator. */
  private async startExtension(): Promise<ExtensionState | null> {
    if (this.extension !== undefined) return this.extension;
    const offset = this.reader.offset;
    const got = await this.reader.fill(EXTENSION_HEADER_SIZE);
    if (got === 0) return (this.extension = null);
    const { version, length } = decodeExtensionHeader(this.reader.take(got), offset);
    this.extension = { offset, length, version, decoder: new ExtensionDecoder(offset, length), pagesLeft: 0, vmaIndex: -1 };
    return this.extension;
  }

  /** Reads the next record; of a SHARED_PAGES record only the fixed part, its page records come next. */
  private async extensionRecord(ext: ExtensionState): Promise<void> {
    const { decoder } = ext;
    const what = `extension (its header says ${ext.length} bytes)`;
    const frame = decoder.frame(decoder.remaining < RECORD_HEADER_SIZE ? Buffer.alloc(0) : await this.struct(RECORD_HEADER_SIZE, what));
    if (frame.type !== RecordType.SHARED_PAGES || frame.length < SHARED_PAGES_FIXED_SIZE) {
      decoder.record(frame, await this.struct(frame.length + ((8 - (frame.length % 8)) % 8), what));
      return;
    }
    const head = decoder.sharedPages.begin(frame, await this.struct(SHARED_PAGES_FIXED_SIZE, what));
    const index = this.starts.findIndex((start, i) => start === head.start && this.ends[i] === head.end && this.shared[i] === 1);
    if (index < 0) {
      throw new ImageFormatError(frame.at + RECORD_HEADER_SIZE,
        `SHARED_PAGES record: ${hex(head.start)}-${hex(head.end)} is no shared VMA of the VMA list`);
    }
    ext.vmaIndex = index;
    ext.pagesLeft = head.count;
  }

  private async sharedPagesBatch(ext: ExtensionState): Promise<PageBatch> {
    const reader = this.reader;
    const offset = reader.offset;
    const got = await reader.fill(PAGE_RECORD_SIZE);
    if (got < PAGE_RECORD_SIZE) {
      throw new ImageFormatError(offset, `image ends inside a page record of a SHARED_PAGES record (expected ${PAGE_RECORD_SIZE} bytes, got ${got})`);
    }
    const view = reader.peek();
    const count = Math.min(ext.pagesLeft, Math.floor(view.length / PAGE_RECORD_SIZE));
    const vaddrs = new Float64Array(count);
    for (let i = 0; i < count; i++) vaddrs[i] = ext.decoder.sharedPages.page(view, i * PAGE_RECORD_SIZE, offset + i * PAGE_RECORD_SIZE);
    ext.pagesLeft -= count;
    return {
      offset, count, bytes: reader.take(count * PAGE_RECORD_SIZE), firstPage: 8, stride: PAGE_RECORD_SIZE, vaddrs,
      vmaIndexes: new Int32Array(count).fill(ext.vmaIndex),
    };
  }

  /** Stops and closes a file stream this reader opened. */
  async close(): Promise<void> {
    await this.chunks.return?.();
  }
}

/** `length` bytes of scattered records from record `from` on, put back in stream order. */
function interleave(words: Buffer, pages: Buffer, from: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  for (let i = from; at < length; i++) {
    at += words.copy(out, at, i * 8, i * 8 + Math.min(8, length - at));
    at += pages.copy(out, at, i * PAGE_SIZE, i * PAGE_SIZE + Math.min(PAGE_SIZE, length - at));
  }
  return out;
}
