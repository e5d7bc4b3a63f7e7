// The image as the restore reads it: from a file or a pipe, once, front to back, into a few
// buffers used in turn: chunks for the image reader, and scatter buffers into which
// readv puts v0's page records apart (address words in one, pages back to back in the other), so
// that pages go on into the task from where they were read. A buffer is read over only once the
// image reader has moved past it (it keeps the last two chunks) and the page writes copying from
// it are done (hold). Reads are synchronous once the descriptor has bytes; a pipe that stalls is
// waited for in short polls with the event loop run in between, so SIGINT and SIGTERM stop the
// restore even then.

import koffi from 'koffi';
import { readSync } from 'node:fs';
import { constants } from 'node:os';
import { PAGE_RECORD_SIZE } from '../format.js';
import type { RecordScatter, ScatteredRecords } from '../imagestream.js';
import { PAGE_SIZE } from '../model.js';
import { pageAlignedBuffer } from '../ptrace/aligned.js';
import { NativeError } from '../ptrace/errors.js';
import { pollIn, readv } from '../ptrace/libc.js';
import { IOV_MAX } from '../ptrace/memory.js';
import { IovecArray } from '../ptrace/memwrite.js';
import { interrupted } from './errors.js';

/** Big enough for a thousand page records per batch, the most one process_vm_writev takes. */
const CHUNK_SIZE = 4 << 20;
/** Two for the image reader, two for the writes in flight. */
const BUFFERS = 4;
/** Page records per scatter read: two iovecs each. */
const SCATTER_RECORDS = IOV_MAX / 2;
/** Scatter buffers: one being read into while the others' pages are written. */
const SCATTER_SETS = 4;
/** How often a stalled input looks at the abort signal. */
const STALL_CHECK_MS = 50;

interface ScatterSet {
  words: Buffer;
  pages: Buffer;
  wordsAddress: number;
  pagesAddress: number;
  iov: IovecArray;
}

export class ImageInput {
  private readonly buffers = Array.from({ length: BUFFERS }, () => pageAlignedBuffer(CHUNK_SIZE));
  private readonly sets: ScatterSet[] = Array.from({ length: SCATTER_SETS }, () => {
    const words = Buffer.alloc(SCATTER_RECORDS * 8);
    const pages = pageAlignedBuffer(SCATTER_RECORDS * PAGE_SIZE);
    return { words, pages, wordsAddress: Number(koffi.address(words)), pagesAddress: Number(koffi.address(pages)), iov: new IovecArray() };
  });
  private setTurn = 0;
  private readonly holds = new Map<ArrayBufferLike, Promise<unknown>[]>();

  /** signal: once aborted, a read waiting for bytes ends the restore ('interrupted'). */
  constructor(private readonly fd: number, private readonly signal?: AbortSignal) {}

  /** The bytes of `buffer` are in use until `done` settles. */
  hold(buffer: ArrayBufferLike, done: Promise<unknown>): void {
    // Its failure is the restore's, thrown again where the buffer is waited for or the writes are
    // drained; a restore that stops first (interrupted) must not leave it unhandled.
    done.catch(() => {});
    const list = this.holds.get(buffer);
    if (list) list.push(done);
    else if (this.buffers.some((b) => b.buffer === buffer) || this.sets.some((s) => s.pages.buffer === buffer)) this.holds.set(buffer, [done]);
  }

  async *chunks(): AsyncGenerator<Uint8Array> {
    for (let turn = 0; ; turn = (turn + 1) % BUFFERS) {
      const buffer = this.buffers[turn];
      await this.released(buffer.buffer);
      let filled = 0;
      while (filled < buffer.length) {
        const got = await this.readSome(() => readSync(this.fd, buffer, filled, buffer.length - filled, null));
        if (got === 0) break;
        filled += got;
      }
      if (filled === 0) return;
      yield buffer.subarray(0, filled);
      if (filled < buffer.length) return;
    }
  }

  /** The image reader's RecordScatter: page records read apart, going on from where the chunks stopped. */
  readonly scatter: RecordScatter = async (start: Buffer): Promise<ScatteredRecords> => {
    const set = this.sets[this.setTurn];
    this.setTurn = (this.setTurn + 1) % SCATTER_SETS;
    await this.released(set.pages.buffer);
    const want = SCATTER_RECORDS * PAGE_RECORD_SIZE;
    placeStart(set, start);
    let done = start.length;
    while (done < want) {
      aimIovecs(set, done, want);
      const got = await this.readSome(() => readv(this.fd, set.iov.words, set.iov.count));
      if (got === 0) break;
      done += got;
    }
    return { words: set.words, pages: set.pages, bytes: done };
  };

  private async released(buffer: ArrayBufferLike): Promise<void> {
    await Promise.allSettled(this.holds.get(buffer) ?? []);
    this.holds.delete(buffer);
  }

  /**
   * One read, once the descriptor has bytes (or its end). EAGAIN (stdin shared with a parent that
   * set O_NONBLOCK, and another reader was first) waits again.
   */
  private async readSome(read: () => number): Promise<number> {
    for (;;) {
      // Bytes that arrive end the wait at once; between waits the event loop runs its signal handlers.
      while (!pollIn(this.fd, STALL_CHECK_MS)) {
        await new Promise((resolve) => setImmediate(resolve));
        if (this.signal?.aborted) throw interrupted(this.signal);
      }
      try {
        return read();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EAGAIN' && !(err instanceof NativeError && err.errno === constants.errno.EAGAIN)) throw err;
      }
    }
  }
}

/** Lays the first bytes of a read (less than a record) out as the read would have. */
function placeStart(set: ScatterSet, start: Buffer): void {
  const word = Math.min(8, start.length);
  start.copy(set.words, 0, 0, word);
  start.copy(set.pages, 0, word);
}

/** Points the set's iovecs at the record bytes [from, to) of the read: words and pages apart. */
function aimIovecs(set: ScatterSet, from: number, to: number): void {
  set.iov.clear();
  for (let at = from; at < to;) {
    const record = Math.floor(at / PAGE_RECORD_SIZE);
    const within = at - record * PAGE_RECORD_SIZE;
    if (within < 8) {
      set.iov.add(set.wordsAddress + record * 8 + within, 8 - within);
      at += 8 - within;
    } else {
      const pageAt = within - 8;
      set.iov.add(set.pagesAddress + record * PAGE_SIZE + pageAt, PAGE_SIZE - pageAt);
      at += PAGE_SIZE - pageAt;
    }
  }
}
