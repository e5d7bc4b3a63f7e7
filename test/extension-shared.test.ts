// SHARED_PAGES records (type 16): the contents of shared memory without a file to open again. Their
// layout (bytes around page records that a dump reads from the target), their checks, the
// streaming reader that hands their pages out without holding them, and the size cap that does
// not count them.

import test from 'ava';
import {
  EXTENSION_MAX_SIZE, ExtensionDecoder, ExtensionFormatError, RecordType, SHARED_PAGES_FIXED_SIZE, SHARED_PAGES_PER_RECORD,
  decodeExtension, encodeExtension, extensionPieces, extensionSize, producedBytes, shapeOf, type ExtensionPiece,
} from '../src/extension.js';
import type { ImageExtension } from '../src/extension-model.js';
import { PAGE_RECORD_SIZE, VMA_TERMINATOR, encodeHeader, encodeMm, encodeRegs, encodeVma } from '../src/format.js';
import { ImageReader } from '../src/imagestream.js';
import { PAGE_SIZE, type UserRegs, type Vma } from '../src/model.js';
import { PageIndex } from '../src/pageindex.js';
import { ImageFormatError, formatImage, imageToJson, readImage } from '../src/show.js';
import { SAMPLE_SHARED_MEMORY, pageIndex, recordOffsets, sampleExtension } from './helpers/extension-sample.js';
import { batchPage, imageStream } from './helpers/stream.js';

const BASE = 8192;
const withShared = (sharedMemory = SAMPLE_SHARED_MEMORY): ImageExtension => ({ ...sampleExtension(), sharedMemory });
/** Every byte of a page: its address's low byte, then its index within the page. */
const pageData = (vaddr: number) => Buffer.from(Array.from({ length: PAGE_SIZE }, (_, i) => (vaddr / PAGE_SIZE + i) & 0xff));
const pieceLength = (piece: ExtensionPiece) => (piece instanceof PageIndex ? piece.totalPages * PAGE_RECORD_SIZE : piece.length);

test('layout: bytes around the page records, the fixed part right before them, the length counting them', (t) => {
  const ext = withShared();
  const pieces = extensionPieces(ext);
  t.deepEqual(pieces.map((p) => (p instanceof PageIndex ? p.totalPages : 'bytes')), ['bytes', 3, 'bytes', 0, 'bytes']);
  const size = pieces.reduce((sum, p) => sum + pieceLength(p), 0);
  t.is(size, extensionSize(shapeOf(ext)));
  t.is(Number((pieces[0] as Buffer).readBigUInt64LE(8)), size, 'the header length counts the page records');
  const head = (pieces[0] as Buffer).subarray(-(8 + SHARED_PAGES_FIXED_SIZE));
  t.deepEqual([head.readUInt32LE(0), head.readUInt32LE(4)], [RecordType.SHARED_PAGES, SHARED_PAGES_FIXED_SIZE + 3 * PAGE_RECORD_SIZE]);
  const { start, end } = SAMPLE_SHARED_MEMORY[0];
  t.deepEqual([Number(head.readBigUInt64LE(8)), Number(head.readBigUInt64LE(16)), head.readUInt32LE(24), head.readUInt32LE(28)], [start, end, 3, 0]);

  const buf = encodeExtension(ext, pageData);
  t.is(buf.length, size);
  const first = (pieces[0] as Buffer).length;
  for (const [k, vaddr] of [start, start + 2 * PAGE_SIZE, start + 3 * PAGE_SIZE].entries()) {
    const record = first + k * PAGE_RECORD_SIZE;
    t.is(Number(buf.readBigUInt64LE(record)), vaddr);
    t.true(buf.subarray(record + 8, record + PAGE_RECORD_SIZE).equals(pageData(vaddr)));
  }
  t.deepEqual(decodeExtension(buf, BASE), ext);
  t.false('sharedMemory' in decodeExtension(encodeExtension(sampleExtension())), 'absent from an image without the records');
});

test('a VMA with more pages than a record holds takes several records, its pages never in memory', (t) => {
  const start = 0x7f00_0000_0000;
  const pages = SHARED_PAGES_PER_RECORD + 2;
  const ext = withShared([{ start, end: start + (pages + 1) * PAGE_SIZE, pages: pageIndex([[start, start + pages * PAGE_SIZE]]) }]);
  const pieces = extensionPieces(ext);
  t.deepEqual(pieces.filter((p) => p instanceof PageIndex).map((p) => [(p as PageIndex).totalPages, (p as PageIndex).starts[0]]),
    [[SHARED_PAGES_PER_RECORD, start], [2, start + SHARED_PAGES_PER_RECORD * PAGE_SIZE]]);
  t.is(pieces.reduce((sum, p) => sum + pieceLength(p), 0), extensionSize(shapeOf(ext)));
});

/** The sample with two one-page shared VMAs, encoded, and the offsets of its SHARED_PAGES records. */
function twoRecords(): { buf: Buffer; at: number[] } {
  const vma = (start: number) => ({ start, end: start + 2 * PAGE_SIZE, pages: pageIndex([[start, start + PAGE_SIZE]]) });
  const buf = encodeExtension(withShared([vma(0x7f00_0010_0000), vma(0x7f00_0020_0000)]));
  return { buf, at: recordOffsets(buf).filter((r) => r.type === RecordType.SHARED_PAGES).map((r) => r.at) };
}

test('records of one VMA that follow one another continue it', (t) => {
  const { buf, at: [, second] } = twoRecords();
  buf.writeBigUInt64LE(0x7f00_0010_0000n, second + 8);
  buf.writeBigUInt64LE(0x7f00_0010_2000n, second + 16);
  buf.writeBigUInt64LE(0x7f00_0010_1000n, second + 32);
  t.deepEqual(decodeExtension(buf).sharedMemory,
    [{ start: 0x7f00_0010_0000, end: 0x7f00_0010_2000, pages: pageIndex([[0x7f00_0010_0000, 0x7f00_0010_2000]]) }]);
});

test('corrupt SHARED_PAGES records name the offending byte', (t) => {
  const { buf: good, at: [first, second] } = twoRecords();
  const rejects = (edit: (b: Buffer) => void, offset: number, message: RegExp) => {
    const bad = Buffer.from(good);
    edit(bad);
    const err = t.throws(() => decodeExtension(bad, BASE), { instanceOf: ExtensionFormatError });
    t.is(err?.offset, BASE + offset, err?.message);
    t.regex(err?.message ?? '', message);
  };
  const payload = first + 8;
  const page = payload + SHARED_PAGES_FIXED_SIZE;
  rejects((b) => b.writeBigUInt64LE(0x7f00_0010_0008n, payload), payload, /SHARED_PAGES record: start 0x7f0000100008 is not page-aligned/);
  rejects((b) => b.writeBigUInt64LE(0x7f00_0010_0000n, payload + 8), payload + 8, /end 0x7f0000100000 is not above start/);
  rejects((b) => b.writeUInt32LE(1, payload + 20), payload + 20, /pad is not 0/);
  rejects((b) => b.writeUInt32LE(2, payload + 16), first + 4, /length 4128 does not hold 2 page records \(expected 8232\)/);
  rejects((b) => b.writeUInt32LE(16, first + 4), first + 4, /length 16, expected at least 24/);
  rejects((b) => b.writeBigUInt64LE(0x7f00_0010_0010n, page), page, /page 0x7f0000100010 is not page-aligned/);
  rejects((b) => b.writeBigUInt64LE(0x7f00_0010_2000n, page), page, /page 0x7f0000102000 is outside its shared memory 0x7f0000100000-0x7f0000102000/);
  rejects((b) => b.writeBigUInt64LE(0xffff_0000_0000_0000n, page), page, /page 0xffff000000000000 is outside/);
  rejects((b) => {
    b.writeBigUInt64LE(0x7f00_0010_1000n, second + 8); // overlaps the first VMA
    b.writeBigUInt64LE(0x7f00_0010_0000n, second + 32);
  }, second + 8, /start 0x7f0000101000 is below the previous shared memory's end 0x7f0000102000/);
  rejects((b) => { // the same VMA again, with a page that is not above the last one
    b.writeBigUInt64LE(0x7f00_0010_0000n, second + 8);
    b.writeBigUInt64LE(0x7f00_0010_2000n, second + 16);
    b.writeBigUInt64LE(0x7f00_0010_0000n, second + 32);
  }, second + 32, /page 0x7f0000100000 is not above the previous one 0x7f0000100000/);
});

test('the size cap counts every byte but the page records', (t) => {
  const frame = (decoder: ExtensionDecoder, type: number, length: number) => {
    const header = Buffer.alloc(8);
    header.writeUInt32LE(type, 0);
    header.writeUInt32LE(length, 4);
    return decoder.frame(header);
  };
  const pages = Math.ceil(EXTENSION_MAX_SIZE / PAGE_RECORD_SIZE);
  t.notThrows(() => frame(new ExtensionDecoder(0, 2 ** 40), RecordType.SHARED_PAGES, SHARED_PAGES_FIXED_SIZE + pages * PAGE_RECORD_SIZE));
  const err = t.throws(() => frame(new ExtensionDecoder(BASE, 2 ** 40), RecordType.EXE, EXTENSION_MAX_SIZE), { instanceOf: ExtensionFormatError });
  t.is(err?.message, `byte ${BASE + 20}: the extension's bytes besides shared pages exceed ${EXTENSION_MAX_SIZE}`);
});

// ---------------------------------------------------------------------------------------------
// Through the streaming reader, after a v0 image whose VMAs the records name

const vma = (start: number, end: number, mayShare: boolean): Vma => ({
  start, end, read: true, write: true, exec: false, mayShare, offset: 0, dev: '00:01', inode: 7, name: '/memfd:x (deleted)', vmFlags: new Set(),
});

function v0(vmas: Vma[]): Buffer {
  const regs = Object.fromEntries(['r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx',
    'rsi', 'rdi', 'orig_rax', 'rip', 'eflags', 'rsp', 'fs_base', 'gs_base'].map((n) => [n, 0n])) as Record<string, bigint>;
  return Buffer.concat([
    encodeHeader(), encodeRegs({ ...regs, cs: 0x33n, ss: 0x2bn, ds: 0n, es: 0n, fs: 0n, gs: 0n } as UserRegs, []),
    encodeMm({ flags: 0n, defFlags: 0n, startCode: 0, endCode: 0, startData: 0, endData: 0, startBrk: 0, brk: 0,
      startStack: 0, argStart: 0, argEnd: 0, envStart: 0, envEnd: 0 }),
    ...vmas.map(encodeVma), VMA_TERMINATOR, Buffer.alloc(8),
  ]);
}

const sampleVmas = (shared = true) => SAMPLE_SHARED_MEMORY.map(({ start, end }) => vma(start, end, shared));

/** The buffer in chunks of 1000 bytes, so that records straddle them. */
function* chunked(buf: Buffer): Generator<Buffer> {
  for (let at = 0; at < buf.length; at += 1000) yield buf.subarray(at, at + 1000);
}

test('the reader hands the pages out in batches, then the extension with what its records said', async (t) => {
  const ext = withShared();
  const prefix = v0(sampleVmas());
  const bytes = Buffer.concat([prefix, encodeExtension(ext, pageData)]);
  // A scatter read takes the terminator and the extension too, and must give them back.
  for (const scatter of [false, true]) {
    const stream = imageStream(bytes, () => 1000);
    const reader = new ImageReader(stream.chunks, scatter ? stream.scatter : undefined);
    await reader.readHead();
    t.is(await reader.nextPages(), null);
    const seen: number[] = [];
    for (let batch = await reader.nextSharedPages(); batch; batch = await reader.nextSharedPages()) {
      t.deepEqual([...batch.vmaIndexes], Array(batch.count).fill(0));
      batch.vaddrs.forEach((vaddr, i) => {
        t.true(batchPage(batch, i).equals(pageData(vaddr)));
        seen.push(vaddr);
      });
    }
    const { start } = SAMPLE_SHARED_MEMORY[0];
    t.deepEqual(seen, [start, start + 2 * PAGE_SIZE, start + 3 * PAGE_SIZE]);
    const read = await reader.readExtension();
    t.deepEqual(read?.content, ext);
    t.is(read?.offset, prefix.length);
  }
});

test('imgfs show prints each shared VMA with its page count, in text and JSON', async (t) => {
  const summary = await readImage(chunked(Buffer.concat([v0(sampleVmas()), encodeExtension(withShared())])));
  const text = formatImage(summary);
  t.regex(text, /shared memory contents \(2\)\n {2}7f0000100000-7f0000104000 3 pages\n {2}7f0000200000-7f0000202000 0 pages\n/);
  t.deepEqual(JSON.parse(imageToJson(summary)).extension.content.sharedMemory, [
    { start: 0x7f00_0010_0000, end: 0x7f00_0010_4000, pages: 3 }, { start: 0x7f00_0020_0000, end: 0x7f00_0020_2000, pages: 0 },
  ]);
});

test('a record must name a shared VMA of the VMA list', async (t) => {
  const extension = encodeExtension(withShared());
  const at = recordOffsets(extension).find((r) => r.type === RecordType.SHARED_PAGES)!.at;
  for (const vmas of [sampleVmas(false), sampleVmas().slice(1), []]) {
    const prefix = v0(vmas);
    const err = await t.throwsAsync(readImage(chunked(Buffer.concat([prefix, extension]))), { instanceOf: ImageFormatError });
    t.is(err?.message, `byte ${prefix.length + at + 8}: SHARED_PAGES record: 0x7f0000100000-0x7f0000104000 is no shared VMA of the VMA list`);
  }
});

test('more shared pages than the cap stream through, never held', async (t) => {
  const start = 0x7f00_0000_0000;
  const pages = Math.ceil(EXTENSION_MAX_SIZE / PAGE_RECORD_SIZE) + 1000;
  const ext = withShared([{ start, end: start + pages * PAGE_SIZE, pages: pageIndex([[start, start + pages * PAGE_SIZE]]) }]);
  const prefix = v0([vma(start, start + pages * PAGE_SIZE, true)]);
  function* image(): Generator<Buffer> {
    yield prefix;
    for (const piece of extensionPieces(ext)) {
      if (!(piece instanceof PageIndex)) {
        yield Buffer.isBuffer(piece) ? piece : producedBytes(piece);
        continue;
      }
      const chunk = Buffer.alloc(256 * PAGE_RECORD_SIZE);
      for (let k = 0; k < piece.totalPages; k += 256) {
        const n = Math.min(256, piece.totalPages - k);
        for (let i = 0; i < n; i++) chunk.writeBigUInt64LE(BigInt(piece.pageAddress(k + i)), i * PAGE_RECORD_SIZE);
        yield chunk.subarray(0, n * PAGE_RECORD_SIZE);
      }
    }
  }
  const summary = await readImage(image());
  t.true(summary.extension!.length > EXTENSION_MAX_SIZE);
  t.is(summary.size, prefix.length + extensionSize(shapeOf(ext)));
  t.is(summary.extension!.content.sharedMemory![0].pages.totalPages, pages);
});
