// Writing into another process's memory in bulk: process_vm_writev with iovec arrays kept as u32
// word pairs (base low, base high, length low, length high), like memory.ts reads. It honours
// the target's protections (no FOLL_FORCE): the pages written must be writable.

import { constants } from 'node:os';
import { fromWords } from '../u64.js';
import { libc, nativeError } from './libc.js';
import { IOV_MAX, IOVEC_WORDS, setIovec } from './memory.js';

const rawProcessVmWritev = libc.func(
  'intptr_t process_vm_writev(int pid, void *local, unsigned long liovcnt, void *remote, unsigned long riovcnt, unsigned long flags)',
);

/** One side of a process_vm_writev: up to IOV_MAX (address, length) pairs. */
export class IovecArray {
  readonly words = new Uint32Array(IOV_MAX * IOVEC_WORDS);
  count = 0;
  bytes = 0;

  get full(): boolean {
    return this.count === IOV_MAX;
  }

  /** Appends a segment, extending the last one when it continues it. */
  add(address: number, length: number): void {
    const last = (this.count - 1) * IOVEC_WORDS;
    if (this.count > 0 && fromWords(this.words[last], this.words[last + 1]) + this.words[last + 2] === address) {
      this.words[last + 2] += length;
    } else {
      setIovec(this.words, this.count * IOVEC_WORDS, address, length);
      this.count++;
    }
    this.bytes += length;
  }

  clear(): void {
    this.count = 0;
    this.bytes = 0;
  }
}

/**
 * Copies the local segments into the remote ones (equal totals, each segment under 4 GiB) on
 * one of koffi's worker threads, so that several writes can run at once and beside our own
 * work; process_vm_writev needs no tracer thread. Both arrays, and the memory the local one
 * points into, must stay untouched until the promise settles; then both are cleared.
 */
export function writeVectors(pid: number, local: IovecArray, remote: IovecArray): Promise<void> {
  if (local.bytes !== remote.bytes) throw new RangeError(`writeVectors: ${local.bytes} local bytes for ${remote.bytes} remote ones`);
  if (local.count === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    rawProcessVmWritev.async(pid, local.words, local.count, remote.words, remote.count, 0, (err: unknown, result: number | bigint) => {
      if (err) return reject(err);
      const written = Number(result);
      if (written !== remote.bytes) {
        const first = fromWords(remote.words[0], remote.words[1]);
        return reject(nativeError(written < 0 ? constants.errno.EFAULT : constants.errno.EIO, `process_vm_writev(${pid})`,
          `wrote ${Math.max(written, 0)} of ${remote.bytes} bytes to the ranges from 0x${first.toString(16)}`));
      }
      local.clear();
      remote.clear();
      resolve();
    });
  });
}
