// The image's private pages placed into the restored task's fresh anonymous memory with
// UFFDIO_COPY (ptrace/userfault.ts: no page is zeroed before it is filled). Pages that lie back
// to back where they were read (scattered batches) and in the task, within one VMA, are one copy;
// long copies go to worker threads, which copy beside our own reading and beside each other, and
// short ones are done at once, where a worker's hand-off would cost more than the copy.

import koffi from 'koffi';
import type { PageBatch } from '../imagestream.js';
import { PAGE_SIZE } from '../model.js';
import type { RemoteTask } from '../ptrace/remote.js';
import { Userfault } from '../ptrace/userfault.js';

/** Copies shorter than this are done on the main thread. */
const WORKER_MIN_BYTES = 64 << 10;

export class PagePlacer {
  private readonly registered = new Set<number>();
  private readonly copies = new Set<Promise<void>>();
  private failure: unknown;

  private constructor(private readonly userfault: Userfault) {}

  /** A placer for the task's memory, or null when its kernel refuses a userfaultfd. */
  static open(remote: RemoteTask): PagePlacer | null {
    const userfault = Userfault.open(remote);
    return userfault && new PagePlacer(userfault);
  }

  /** Makes the anonymous VMA [start, end) take placed pages (once per VMA). */
  prepare(start: number, end: number): void {
    if (this.registered.has(start)) return;
    this.userfault.register(start, end - start);
    this.registered.add(start);
  }

  /**
   * Starts placing the batch's pages (in prepared VMAs, ascending); resolves when they are all
   * placed, and until then the batch's bytes must stay put. Throws what a copy failed with.
   */
  place(batch: PageBatch): Promise<void> {
    const base = Number(koffi.address(batch.bytes)) + batch.firstPage;
    const started: Promise<void>[] = [];
    for (let i = 0; i < batch.count;) {
      let n = 1;
      if (batch.stride === PAGE_SIZE) {
        while (i + n < batch.count && batch.vaddrs[i + n] === batch.vaddrs[i] + n * PAGE_SIZE && batch.vmaIndexes[i + n] === batch.vmaIndexes[i]) n++;
      }
      const length = n * PAGE_SIZE;
      if (length < WORKER_MIN_BYTES) this.userfault.copyNow(batch.vaddrs[i], base + i * batch.stride, length);
      else started.push(this.track(this.userfault.copy(batch.vaddrs[i], base + i * batch.stride, length)));
      i += n;
    }
    return Promise.all(started).then(() => {
      if (this.failure) throw this.failure;
    });
  }

  /** Waits for every copy, then lets the userfaultfd go: the VMAs are back to ordinary faults. */
  async finish(): Promise<void> {
    try {
      await Promise.all(this.copies);
      if (this.failure) throw this.failure;
    } finally {
      this.userfault.close();
    }
  }

  /**
   * For a failed restore, once the task is killed: waits for the copies in flight on other
   * threads (they fail fast), then lets the userfaultfd go, whose number they still use.
   */
  async abandon(): Promise<void> {
    await Promise.all(this.copies);
    this.userfault.close();
  }

  private track(copy: Promise<void>): Promise<void> {
    const tracked = copy.catch((err: unknown) => {
      this.failure ??= err;
    }).finally(() => this.copies.delete(tracked));
    this.copies.add(tracked);
    return tracked;
  }
}
