// Layout arithmetic: page index lookups and extent reads at any offset, against a naive model.

import test from 'ava';
import { LayoutBuilder, type PageSource } from '../src/extents.js';
import { PAGE_RECORD_SIZE } from '../src/format.js';
import { PAGE_SIZE } from '../src/model.js';
import { gapsOf, PageIndex, PageIndexBuilder } from '../src/pageindex.js';
import { prng } from './helpers/prng.js';

/** A fake target whose byte at address a is (a * 31 + (a >> 12)) & 0xff, counting its reads. */
class FakeMemory implements PageSource {
  out: Buffer = Buffer.alloc(0);
  segments: Array<[number, number, number]> = [];
  commits = 0;
  begin(out: Buffer) {
    this.out = out;
    this.segments = [];
  }
  add(outOffset: number, vaddr: number, length: number) {
    this.segments.push([outOffset, vaddr, length]);
  }
  commit() {
    if (this.segments.length) this.commits++;
    for (const [o, v, n] of this.segments) for (let i = 0; i < n; i++) this.out[o + i] = FakeMemory.byteAt(v + i);
  }
  static byteAt(a: number) {
    return (a * 31 + Math.floor(a / PAGE_SIZE)) & 0xff;
  }
}

function indexOf(ranges: Array<[number, number]>): PageIndex {
  const b = new PageIndexBuilder();
  for (const [s, e] of ranges) b.add(s * PAGE_SIZE, e * PAGE_SIZE);
  return b.build();
}

test('page index merges touching runs and answers lookups', (t) => {
  const idx = indexOf([[10, 12], [12, 15], [20, 21], [100, 104]]);
  t.is(idx.runCount, 3);
  t.is(idx.totalPages, 10);
  t.is(idx.pageAddress(0), 10 * PAGE_SIZE);
  t.is(idx.pageAddress(5), 20 * PAGE_SIZE);
  t.is(idx.pageAddress(9), 103 * PAGE_SIZE);
  t.true(idx.has(14 * PAGE_SIZE + 5));
  t.false(idx.has(15 * PAGE_SIZE));
  t.is(idx.pagesIn(11 * PAGE_SIZE, 101 * PAGE_SIZE), 4 + 1 + 1);
  t.deepEqual([...idx.runsIn(13 * PAGE_SIZE, 102 * PAGE_SIZE)], [
    [13 * PAGE_SIZE, 15 * PAGE_SIZE], [20 * PAGE_SIZE, 21 * PAGE_SIZE], [100 * PAGE_SIZE, 102 * PAGE_SIZE],
  ]);
  const r = idx.restrict([[0, 11 * PAGE_SIZE], [100 * PAGE_SIZE, 200 * PAGE_SIZE]]);
  t.is(r.totalPages, 1 + 4);
});

test('page index rejects unaligned and out-of-order ranges', (t) => {
  const b = new PageIndexBuilder();
  t.throws(() => b.add(1, PAGE_SIZE), { instanceOf: RangeError });
  b.add(PAGE_SIZE * 4, PAGE_SIZE * 5);
  t.throws(() => b.add(0, PAGE_SIZE), { instanceOf: RangeError });
});

test('a 16 GiB index of alternate pages costs a few MiB', (t) => {
  const b = new PageIndexBuilder();
  const pages = (16 * 2 ** 30) / PAGE_SIZE;
  for (let p = 0; p < pages; p += 64) b.add(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
  const idx = b.build();
  const bytes = idx.starts.byteLength + idx.counts.byteLength + idx.before.byteLength;
  t.true(bytes < 4 * 2 ** 20, `${bytes} bytes`);
});

/** The whole file, built byte by byte from the extents' definitions. */
function materialize(header: Buffer, pages: PageIndex, memVaddr: number, memLen: number, present: PageIndex): Buffer {
  const parts: Buffer[] = [header];
  for (let k = 0; k < pages.totalPages; k++) {
    const rec = Buffer.alloc(PAGE_RECORD_SIZE);
    const a = pages.pageAddress(k);
    rec.writeBigUInt64LE(BigInt(a));
    for (let i = 0; i < PAGE_SIZE; i++) rec[8 + i] = FakeMemory.byteAt(a + i);
    parts.push(rec);
  }
  parts.push(Buffer.alloc(13));
  const mem = Buffer.alloc(memLen);
  for (let i = 0; i < memLen; i++) if (present.has(memVaddr + i)) mem[i] = FakeMemory.byteAt(memVaddr + i);
  parts.push(mem);
  return Buffer.concat(parts);
}

test('reads at random offsets and sizes equal the naive file', (t) => {
  const rnd = prng(42);
  const header = Buffer.from(Array.from({ length: 777 }, (_, i) => (i * 7) & 0xff));
  const pages = indexOf([[0x400, 0x403], [0x500, 0x501], [0x7fff0, 0x7fff4]]);
  const memVaddr = 0x600 * PAGE_SIZE;
  const memLen = 8 * PAGE_SIZE;
  const present = indexOf([[0x601, 0x603], [0x606, 0x607]]);
  const layout = new LayoutBuilder().bytes(header).records(pages).zeros(13).memory(memVaddr, memLen, present).build();
  const whole = materialize(header, pages, memVaddr, memLen, present);
  t.is(layout.size, whole.length);
  const src = new FakeMemory();
  for (let i = 0; i < 2000; i++) {
    const pos = Math.floor(rnd() * (whole.length + 100));
    const len = 1 + Math.floor(rnd() * (rnd() < 0.5 ? 64 : 3 * PAGE_RECORD_SIZE));
    const out = Buffer.alloc(len, 0xee);
    const n = layout.read(out, len, pos, src);
    const expected = whole.subarray(pos, pos + len);
    t.is(n, expected.length);
    if (!out.subarray(0, n).equals(expected)) {
      t.fail(`mismatch at pos ${pos} len ${len}`);
      return;
    }
  }
});

test('one read issues one batch, and holes cost no target read', (t) => {
  const present = indexOf([[0x601, 0x602]]);
  const layout = new LayoutBuilder().memory(0x600 * PAGE_SIZE, 4 * PAGE_SIZE, present).build();
  const src = new FakeMemory();
  const out = Buffer.alloc(4 * PAGE_SIZE);
  layout.read(out, out.length, 0, src);
  t.is(src.commits, 1);
  t.deepEqual(src.segments, [[PAGE_SIZE, 0x601 * PAGE_SIZE, PAGE_SIZE]]);
  layout.read(out, PAGE_SIZE, 2 * PAGE_SIZE, src);
  t.is(src.commits, 1);
  t.true(out.subarray(0, PAGE_SIZE).every((b) => b === 0));
});

test('alignTo pads with zeros to the boundary', (t) => {
  const layout = new LayoutBuilder().bytes(Buffer.alloc(10, 1)).alignTo(PAGE_SIZE).bytes(Buffer.alloc(1, 2)).build();
  t.is(layout.size, PAGE_SIZE + 1);
  t.is(layout.extents[2].offset, PAGE_SIZE);
});

test('a deferred extent is made once, when a read first reaches it, and must be as long as promised', (t) => {
  const memory = new FakeMemory();
  let made = 0;
  const layout = new LayoutBuilder()
    .bytes(Buffer.from('head'))
    .deferred(6, () => {
      made++;
      return Buffer.from('later!');
    })
    .zeros(2)
    .build();
  const read = (pos: number, length: number) => {
    const out = Buffer.alloc(length);
    return out.subarray(0, layout.read(out, length, pos, memory)).toString('latin1');
  };
  t.is(layout.size, 12);
  t.is(read(0, 4), 'head');
  t.is(made, 0, 'not reached: not made');
  t.is(read(2, 6), 'adlate');
  t.is(read(6, 6), 'ter!\0\0');
  t.is(made, 1, 'made once for every read');
  const wrong = new LayoutBuilder().deferred(4, () => Buffer.from('abc')).build();
  t.throws(() => wrong.read(Buffer.alloc(4), 4, 0, memory), { message: 'deferred extent at 0: 3 bytes made, 4 promised' });
});

test('gapsOf: the parts of a range outside ascending runs, whichever way they overlap it', (t) => {
  t.deepEqual(gapsOf(0, 10, []), [[0, 10]]);
  t.deepEqual(gapsOf(0, 10, [[2, 4], [6, 7]]), [[0, 2], [4, 6], [7, 10]]);
  t.deepEqual(gapsOf(3, 8, [[0, 4], [7, 12]]), [[4, 7]], 'runs reaching past both ends');
  t.deepEqual(gapsOf(3, 8, [[0, 3], [8, 9]]), [[3, 8]], 'runs that only touch it');
  t.deepEqual(gapsOf(3, 8, [[0, 20]]), [], 'all of it in one run');
  t.deepEqual(gapsOf(3, 8, [[3, 5], [5, 8]]), [], 'in runs back to back');
});
