// Reads a snapshot's pages for one FUSE read: one process_vm_readv for the whole batch. Pages that
// process_vm_readv refuses (VMAs without read permission, which the kernel's dumper reads with
// FOLL_FORCE) are read again through /proc/<pid>/mem, which forces access the same way. A --live
// copy is read through its /proc/<pid>/mem from the start (RemoteReader says why), and the pages it
// lacks come from the bytes kept at the snapshot.

import { closeSync, openSync, readSync } from 'node:fs';
import { Errno, ImgfsError } from './errors.js';
import type { PageSource } from './extents.js';
import { NativeError } from './ptrace/errors.js';
import { RemoteReader } from './ptrace/memory.js';
import { isRunning, threadRunTime } from './proc/stat.js';

/** Pages of a snapshot read at the snapshot and kept here: the first one's address, the bytes. */
export interface KeptPages {
  start: number;
  bytes: Buffer;
}

/** Where a snapshot's pages are read. */
export interface MemorySource {
  /** The process, and its start time from /proc/<pid>/stat (a pid can be another process's later). */
  pid: number;
  startTime: number;
  /**
   * Its pages are shared copy-on-write with another process (a --live copy): read them through
   * /proc/<pid>/mem, which does not copy them (RemoteReader).
   */
  sharesPages: boolean;
  /**
   * Pages the process does not have as they were (a --live copy lacks MADV_DONTFORK memory, and
   * shows its own name in its argument area), ascending, disjoint.
   */
  kept: readonly KeptPages[];
  /**
   * --no-freeze: the process is not held, only stopped (SIGSTOP); each thread with its CPU time
   * once it was let go. A read after any of them has run since fails with EINVAL.
   */
  stopped?: readonly { tid: number; runTime: bigint }[];
}

export class TargetMemory implements PageSource {
  private readonly reader = new RemoteReader();
  private out: Buffer = Buffer.alloc(0);
  /** The batch's ranges (outOffset, vaddr, length), kept for the forced re-read; reused, never shrunk. */
  private readonly segments: number[] = [];
  private segmentWords = 0;
  private memFd = -1;
  /** An address a read has reached: it stays readable until the process exits (the layout is frozen). */
  private probeAddress = -1;
  private readonly probeByte = Buffer.alloc(1);

  private readonly pid: number;
  private readonly startTime: number;
  private readonly sharesPages: boolean;
  private readonly kept: readonly KeptPages[];
  private readonly stopped: readonly { tid: number; runTime: bigint }[] | undefined;

  constructor(source: MemorySource) {
    ({ pid: this.pid, startTime: this.startTime, sharesPages: this.sharesPages, kept: this.kept, stopped: this.stopped } = source);
    if (this.sharesPages) this.mem();
  }

  begin(out: Buffer): void {
    this.out = out;
    this.segmentWords = 0;
    this.reader.begin(this.pid, out, this.sharesPages ? this.mem() : -1);
  }

  /** Kept pages are copied from here at once; the rest is read from the process at commit. */
  add(outOffset: number, vaddr: number, length: number): void {
    for (const { start, bytes } of this.kept) {
      const end = start + bytes.length;
      if (end <= vaddr || start >= vaddr + length) continue;
      const from = Math.max(vaddr, start);
      const to = Math.min(vaddr + length, end);
      if (from > vaddr) this.addRemote(outOffset, vaddr, from - vaddr);
      bytes.copy(this.out, outOffset + (from - vaddr), from - start, to - start);
      outOffset += to - vaddr;
      length -= to - vaddr;
      vaddr = to;
    }
    if (length > 0) this.addRemote(outOffset, vaddr, length);
  }

  private addRemote(outOffset: number, vaddr: number, length: number): void {
    const s = this.segments;
    s[this.segmentWords] = outOffset;
    s[this.segmentWords + 1] = vaddr;
    s[this.segmentWords + 2] = length;
    this.segmentWords += 3;
    this.reader.add(outOffset, vaddr, length);
  }

  commit(): void {
    if (this.segmentWords === 0) {
      // Bytes of the snapshot alone (headers, notes): served only while the process lives, as pages are.
      if (!this.stillHeld()) throw new ImgfsError(Errno.EIO, `pid ${this.pid} has exited: its snapshot is gone`);
    } else {
      this.readRemote();
    }
    // Checked after the read: pages read while no thread had run since the snapshot are its pages.
    if (this.hasRun()) {
      throw new ImgfsError(Errno.EINVAL, `pid ${this.pid} has run since its snapshot (continued, and --no-freeze does not hold it): open it again while it is stopped`);
    }
  }

  /** --no-freeze: whether a thread of the process has run since the snapshot (or has exited). */
  hasRun(): boolean {
    return this.stopped?.some(({ tid, runTime }) => {
      try {
        return threadRunTime(this.pid, tid) !== runTime;
      } catch {
        return true;
      }
    }) ?? false;
  }

  private readRemote(): void {
    try {
      this.reader.commit();
      if (this.probeAddress < 0) this.probeAddress = this.segments[1];
    } catch (err) {
      if (err instanceof NativeError && err.errno === Errno.ESRCH) {
        throw new ImgfsError(Errno.EIO, `pid ${this.pid} has exited: its snapshot is gone`);
      }
      // Reads of /proc/<pid>/mem force access already: a failure there is the answer.
      if (this.sharesPages) throw err;
      this.readForced();
    }
  }

  /**
   * Whether the snapshot may still be served: false once the process has exited (its memory is
   * gone). One byte read again where a read succeeded before; until one has, its state in /proc.
   */
  stillHeld(): boolean {
    if (this.probeAddress < 0) return isRunning(this.pid, this.startTime);
    try {
      this.reader.begin(this.pid, this.probeByte, this.sharesPages ? this.mem() : -1);
      this.reader.add(0, this.probeAddress, 1);
      this.reader.commit();
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.memFd >= 0) closeSync(this.memFd);
    this.memFd = -1;
  }

  /** /proc/<pid>/mem, opened once. */
  private mem(): number {
    if (this.memFd < 0) this.memFd = openSync(`/proc/${this.pid}/mem`, 'r');
    return this.memFd;
  }

  private readForced(): void {
    const memFd = this.mem();
    const s = this.segments;
    for (let i = 0; i < this.segmentWords; i += 3) {
      const [outOffset, vaddr, length] = [s[i], s[i + 1], s[i + 2]];
      const got = readSync(memFd, this.out, outOffset, length, vaddr);
      if (got !== length) {
        throw new ImgfsError(Errno.EIO, `pid ${this.pid}: cannot read memory at 0x${(vaddr + got).toString(16)}`);
      }
    }
  }
}
