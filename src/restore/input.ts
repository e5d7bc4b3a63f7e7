// The image as the restore reads it: from a file or a pipe, once, front to back, in chunks read
// synchronously into a few buffers used in turn. A buffer is read over only once the image
// reader has moved past it (it keeps the last two chunks) and the page writes copying from it
// are done (hold).

import { readSync } from 'node:fs';
import { pageAlignedBuffer } from '../ptrace/aligned.js';

/** Big enough for a thousand page records per batch, the most one process_vm_writev takes. */
const CHUNK_SIZE = 4 << 20;
/** Two for the image reader, two for the writes in flight. */
const BUFFERS = 4;

export class ImageInput {
  private readonly buffers = Array.from({ length: BUFFERS }, () => pageAlignedBuffer(CHUNK_SIZE));
  private readonly holds = new Map<ArrayBufferLike, Promise<unknown>[]>();

  constructor(private readonly fd: number) {}

  /** The bytes of `buffer` are in use until `done` settles. */
  hold(buffer: ArrayBufferLike, done: Promise<unknown>): void {
    const list = this.holds.get(buffer);
    if (list) list.push(done);
    else if (this.buffers.some((b) => b.buffer === buffer)) this.holds.set(buffer, [done]);
  }

  async *chunks(): AsyncGenerator<Uint8Array> {
    for (let turn = 0; ; turn = (turn + 1) % BUFFERS) {
      const buffer = this.buffers[turn];
      await Promise.allSettled(this.holds.get(buffer.buffer) ?? []);
      this.holds.delete(buffer.buffer);
      let filled = 0;
      while (filled < buffer.length) {
        const got = this.readSome(buffer, filled);
        if (got === 0) break;
        filled += got;
      }
      if (filled === 0) return;
      yield buffer.subarray(0, filled);
      if (filled < buffer.length) return;
    }
  }

  /** One read; a non-blocking descriptor (stdin shared with a parent that set O_NONBLOCK) is waited for. */
  private readSome(buffer: Buffer, at: number): number {
    for (;;) {
      try {
        return readSync(this.fd, buffer, at, buffer.length - at, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      }
    }
  }
}
