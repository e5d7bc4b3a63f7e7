// ReadAhead: a streaming reader's next request is read in the gap after a reply and served from
// there; any other reader never makes a byte it does not get, and stale or failed read-aheads are
// never served.

import test from 'ava';
import { ReadAhead, type ReadFn } from '../src/readahead.js';

const FILE_SIZE = 10_000;
const byteAt = (pos: number) => (pos * 7 + 3) & 0xff;

/** A file of FILE_SIZE bytes whose reads are logged as [pos, length]; fail makes the next read throw. */
function fakeFile() {
  const file = {
    reads: [] as [number, number][],
    fail: false,
    read: ((out, length, pos) => {
      file.reads.push([pos, length]);
      if (file.fail) throw new Error('target gone');
      const n = Math.max(0, Math.min(length, FILE_SIZE - pos));
      for (let i = 0; i < n; i++) out[i] = byteAt(pos + i);
      return n;
    }) as ReadFn,
  };
  return file;
}

/** What the caller gets for [pos, +length), checked against the file's bytes. */
function readChecked(t: import('ava').ExecutionContext, ahead: ReadAhead, pos: number, length: number): number {
  const out = Buffer.alloc(length, 0xee);
  const n = ahead.read(out, length, pos);
  t.is(n, Math.max(0, Math.min(length, FILE_SIZE - pos)), `bytes at ${pos}`);
  for (let i = 0; i < n; i++) if (out[i] !== byteAt(pos + i)) return t.fail(`byte ${pos + i} differs`) as never;
  return n;
}

test('a sequential reader gets its next request read ahead, and served from there', (t) => {
  const file = fakeFile();
  const ahead = new ReadAhead(file.read, () => true);
  let pos = 0;
  while (pos < FILE_SIZE) {
    pos += readChecked(t, ahead, pos, 1024);
    ahead.readNext();
  }
  t.is(readChecked(t, ahead, pos, 1024), 0, 'end of file');
  // The first two reads go to the file; from then on each is read once, ahead, one request early,
  // and the end-of-file read is served from its read-ahead too.
  t.deepEqual(file.reads.slice(0, 3), [[0, 1024], [1024, 1024], [2048, 1024]]);
  const positions = file.reads.map(([p]) => p);
  t.is(new Set(positions).size, positions.length, 'no range read twice');
  t.deepEqual(positions.slice(-2), [9216, 10000], "the last read-ahead asks past the end, once");
});

test('a reader that jumps never reads ahead: a random pread or a single slice makes only its own bytes', (t) => {
  const file = fakeFile();
  const ahead = new ReadAhead(file.read, () => true);
  for (const pos of [4096, 100, 9000, 0, 5000]) {
    readChecked(t, ahead, pos, 512);
    ahead.readNext();
  }
  t.deepEqual(file.reads, [[4096, 512], [100, 512], [9000, 512], [0, 512], [5000, 512]]);
});

test('bytes read ahead for another request are not served: the request is read as asked', (t) => {
  const file = fakeFile();
  const ahead = new ReadAhead(file.read, () => true);
  readChecked(t, ahead, 0, 1000);
  readChecked(t, ahead, 1000, 1000);
  ahead.readNext(); // reads [2000, +1000)
  readChecked(t, ahead, 2000, 500); // same place, other length
  ahead.readNext(); // reads [2500, +500)
  readChecked(t, ahead, 3000, 500); // jumped
  t.deepEqual(file.reads, [[0, 1000], [1000, 1000], [2000, 1000], [2000, 500], [2500, 500], [3000, 500]]);
});

test('bytes read ahead are not served once the process has gone: the read goes to the file and fails there', (t) => {
  const file = fakeFile();
  let held = true;
  const ahead = new ReadAhead(file.read, () => held);
  readChecked(t, ahead, 0, 1000);
  readChecked(t, ahead, 1000, 1000);
  ahead.readNext();
  held = false;
  file.fail = true;
  t.throws(() => ahead.read(Buffer.alloc(1000), 1000, 2000), { message: 'target gone' });
  t.deepEqual(file.reads.slice(-1), [[2000, 1000]]);
});

test('a failed read-ahead is forgotten: the request meets the failure itself', (t) => {
  const file = fakeFile();
  const ahead = new ReadAhead(file.read, () => true);
  readChecked(t, ahead, 0, 1000);
  readChecked(t, ahead, 1000, 1000);
  file.fail = true;
  t.notThrows(() => ahead.readNext());
  t.throws(() => ahead.read(Buffer.alloc(1000), 1000, 2000), { message: 'target gone' });
  file.fail = false;
  readChecked(t, ahead, 2000, 1000);
  t.deepEqual(file.reads.map(([p]) => p), [0, 1000, 2000, 2000, 2000]);
});

test('a failed read breaks the stream: nothing is read ahead after it', (t) => {
  const file = fakeFile();
  const ahead = new ReadAhead(file.read, () => true);
  readChecked(t, ahead, 0, 1000);
  file.fail = true;
  t.throws(() => ahead.read(Buffer.alloc(1000), 1000, 1000));
  file.fail = false;
  ahead.readNext();
  t.is(file.reads.length, 2);
});
