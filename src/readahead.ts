// A sequential reader's next request, made while the reader is still busy with the last one.
// With direct_io a reader has one FUSE request in flight: after each reply it takes the bytes and
// sends the next request, and meanwhile the main thread has nothing to do. Reading the target's
// pages for the likely next request in that gap takes them off the critical path: the request
// itself is then one memory copy. Only a reader whose last read continued the one before gets it,
// and only one request ahead, so a dd slice or a random pread never makes bytes it does not get.

import { pageAlignedBuffer } from './ptrace/aligned.js';

/** Fills out[0, length) with the file's bytes at pos; returns how many (short at the end). */
export type ReadFn = (out: Buffer, length: number, pos: number) => number;

export class ReadAhead {
  private buffer: Buffer | null = null;
  /** The request read ahead (pos, length asked) and the bytes it gave; readyPos -1: none. */
  private readyPos = -1;
  private readyAsked = 0;
  private readyBytes = 0;
  /** Where the last successful read ended, and whether it began where the one before ended. */
  private lastEnd = -1;
  private lastLength = 0;
  private lastBytes = 0;
  private streaming = false;

  /**
   * read: the file's own read. stillValid: whether bytes read ahead may still be served (the
   * process has not exited since), asked only when a request is served from them.
   */
  constructor(private readonly readFile: ReadFn, private readonly stillValid: () => boolean) {}

  /** The file's bytes at pos: the ones read ahead if this is their request, else read now. */
  read(out: Buffer, length: number, pos: number): number {
    const ready = pos === this.readyPos && length === this.readyAsked;
    this.readyPos = -1;
    this.streaming = pos === this.lastEnd;
    this.lastEnd = -1;
    let n: number;
    if (ready && this.stillValid()) {
      n = this.readyBytes;
      this.buffer!.copy(out, 0, 0, n);
    } else {
      n = this.readFile(out, length, pos);
    }
    this.lastEnd = pos + n;
    this.lastLength = length;
    this.lastBytes = n;
    return n;
  }

  /**
   * Called once the last read's reply is on its way: a streaming reader gets its next request
   * read now. A failure is left for that request to meet when it comes (it is read again then).
   */
  readNext(): void {
    if (!this.streaming || this.lastEnd < 0 || this.lastBytes === 0) return;
    const length = this.lastLength;
    if (!this.buffer || this.buffer.length < length) this.buffer = pageAlignedBuffer(length);
    try {
      this.readyBytes = this.readFile(this.buffer, length, this.lastEnd);
      this.readyPos = this.lastEnd;
      this.readyAsked = length;
    } catch {
      this.readyPos = -1;
    }
  }
}
