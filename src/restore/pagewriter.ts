// Page writes into the restored task, a few at a time: each process_vm_writev runs on a worker
// thread while the main thread reads and checks the next records, and with two in flight both
// cores fault in the task's fresh pages. A write keeps the buffers it copies from alive (and
// their chunks from being read over, see ImageInput.hold) until it is done.

import { IovecArray, writeVectors } from '../ptrace/memwrite.js';

/** Writes in flight at once: one per core of the machines this was measured on. */
const DEPTH = 2;

/** The local and remote sides of one process_vm_writev. */
export interface Segments {
  local: IovecArray;
  remote: IovecArray;
}

interface Pending {
  done: Promise<void>;
  /** What the local segments point into: referenced here so the GC leaves it alone. */
  holds: readonly object[];
}

export class PageWriter {
  private readonly idle: Segments[] = Array.from({ length: DEPTH }, () => ({ local: new IovecArray(), remote: new IovecArray() }));
  private readonly pending = new Set<Pending>();
  private failure: unknown;

  constructor(private readonly pid: number) {}

  /** Empty segments to fill; waits while DEPTH writes are in flight. Throws a failed write's error. */
  async segments(): Promise<Segments> {
    while (this.idle.length === 0) await Promise.race([...this.pending].map((p) => p.done));
    if (this.failure) throw this.failure;
    return this.idle.pop()!;
  }

  /** Starts writing filled segments that point into the given buffers. */
  submit(segments: Segments, holds: readonly object[]): Promise<void> {
    if (segments.local.count === 0) {
      this.idle.push(segments);
      return Promise.resolve();
    }
    const entry: Pending = { holds, done: Promise.resolve() };
    entry.done = writeVectors(this.pid, segments.local, segments.remote).then(
      () => { this.idle.push(segments); },
      (err: unknown) => {
        this.failure ??= err;
        segments.local.clear();
        segments.remote.clear();
        this.idle.push(segments);
      },
    ).finally(() => { this.pending.delete(entry); });
    this.pending.add(entry);
    return entry.done;
  }

  /** Waits for every write in flight; throws the first failure. */
  async drain(): Promise<void> {
    await Promise.all([...this.pending].map((p) => p.done));
    if (this.failure) throw this.failure;
  }
}
