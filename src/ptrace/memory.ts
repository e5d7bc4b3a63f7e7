// Reading another process's memory: the hot path of every dump read. A batch of ranges becomes
// one process_vm_readv per IOV_MAX iovecs (on either side), straight into the caller's buffer; the iovec arrays
// are allocated once per reader and written as u32 word pairs, so a segment costs no allocation.
// Or, for a process whose pages are shared copy-on-write with another (the copy --live reads), one
// preadv of its /proc/<pid>/mem per run of contiguous addresses: process_vm_readv pins the pages
// it reads, and the kernel copies a shared anonymous page that is pinned, even for reading (since
// Linux 5.19), which would double the copy's memory and halve the speed of reading it.

import koffi from 'koffi';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { NativeError } from './errors.js';
import { PAGE_SIZE } from '../model.js';
import { fromWords, highWord } from '../u64.js';
import { pageAlignedBuffer } from './aligned.js';
import { nativeError, preadv, processVmReadv } from './libc.js';

/** The kernel's limit on iovecs per call. */
export const IOV_MAX = 1024;
/** INT_MAX & PAGE_MASK: the kernel silently cuts a batch longer than this. */
const MAX_RW_COUNT = 0x7ffff000;
/** u32 words per struct iovec: base low, base high, length low, length high. */
export const IOVEC_WORDS = 4;
const NO_OUTPUT = Buffer.alloc(0);

export class RemoteReader {
  private readonly maxSegments: number;
  private readonly local: Uint32Array;
  private readonly remote: Uint32Array;
  private pid = 0;
  /** An open /proc/<pid>/mem to read through instead of process_vm_readv, or -1. */
  private memFd = -1;
  private out: Buffer = NO_OUTPUT;
  private outAddress = 0;
  /**
   * Iovecs waiting for the next process_vm_readv on each side, and their bytes. The sides merge
   * contiguous ranges independently: a dump's pages lie back to back in the target but 8 bytes
   * apart in the output, and one remote iovec for them spares the kernel a page-pinning walk per
   * page (about 10% of a dump's read throughput).
   */
  private localCount = 0;
  private remoteCount = 0;
  private pendingBytes = 0;
  private bytesRead = 0;
  private lastOutEnd = 0;
  private lastRemoteEnd = 0;

  constructor(maxSegments = IOV_MAX) {
    if (!Number.isInteger(maxSegments) || maxSegments < 1 || maxSegments > IOV_MAX) {
      throw new RangeError(`RemoteReader: maxSegments must be 1..${IOV_MAX}, not ${maxSegments}`);
    }
    this.maxSegments = maxSegments;
    this.local = new Uint32Array(maxSegments * IOVEC_WORDS);
    this.remote = new Uint32Array(maxSegments * IOVEC_WORDS);
  }

  /**
   * Starts a batch that fills `out`; ranges not added are left as they are. memFd: an open
   * /proc/<pid>/mem to read through (see above), or -1 for process_vm_readv.
   */
  begin(pid: number, out: Buffer, memFd = -1): void {
    this.pid = pid;
    this.memFd = memFd;
    this.out = out;
    this.outAddress = Number(koffi.address(out));
    this.localCount = 0;
    this.remoteCount = 0;
    this.pendingBytes = 0;
    this.bytesRead = 0;
  }

  /**
   * Asks for `length` bytes at remoteAddr into out[outOffset...]. On each side, a range contiguous
   * with the previous one extends its iovec. When an iovec array is full, the pending ranges are
   * read right away (so this may throw what commit() throws).
   */
  add(outOffset: number, remoteAddr: number, length: number): void {
    if (!(outOffset >= 0 && length >= 0 && outOffset + length <= this.out.length)) {
      throw new RangeError(`RemoteReader.add: [${outOffset}, +${length}) is outside the ${this.out.length}-byte output buffer`);
    }
    while (length > MAX_RW_COUNT) {
      this.add(outOffset, remoteAddr, MAX_RW_COUNT);
      outOffset += MAX_RW_COUNT;
      remoteAddr += MAX_RW_COUNT;
      length -= MAX_RW_COUNT;
    }
    if (length === 0) return;
    const fits = this.pendingBytes + length <= MAX_RW_COUNT;
    const full = this.localCount === this.maxSegments || this.remoteCount === this.maxSegments;
    // One preadv reads one run of addresses.
    const jumps = this.memFd >= 0 && remoteAddr !== this.lastRemoteEnd;
    if (!fits || full || jumps) this.flush();
    const pending = this.pendingBytes > 0;
    if (pending && outOffset === this.lastOutEnd) this.local[(this.localCount - 1) * IOVEC_WORDS + 2] += length;
    else setIovec(this.local, this.localCount++ * IOVEC_WORDS, this.outAddress + outOffset, length);
    if (pending && remoteAddr === this.lastRemoteEnd) this.remote[(this.remoteCount - 1) * IOVEC_WORDS + 2] += length;
    else setIovec(this.remote, this.remoteCount++ * IOVEC_WORDS, remoteAddr, length);
    this.pendingBytes += length;
    this.lastOutEnd = outOffset + length;
    this.lastRemoteEnd = remoteAddr + length;
  }

  /**
   * Reads what is pending and ends the batch. Returns the bytes read by the whole batch. Throws
   * NativeError: ESRCH when the process is gone, EIO naming the first address that could not be
   * read (unmapped, or not readable without FOLL_FORCE).
   */
  commit(): number {
    this.flush();
    const total = this.bytesRead;
    this.out = NO_OUTPUT;
    this.bytesRead = 0;
    return total;
  }

  private flush(): void {
    if (this.pendingBytes === 0) return;
    let got: number;
    try {
      got = this.memFd >= 0
        ? preadv(this.memFd, this.local, this.localCount, fromWords(this.remote[0], this.remote[1]))
        : processVmReadv(this.pid, this.local, this.localCount, this.remote, this.remoteCount);
    } catch (err) {
      if (err instanceof NativeError && (err.errno === constants.errno.EFAULT || err.errno === constants.errno.EIO)) got = 0;
      else throw err;
    }
    if (got < this.pendingBytes) {
      const missed = this.firstAddressNotRead(got);
      throw nativeError(constants.errno.EIO, `${this.memFd >= 0 ? 'preadv of /proc/<pid>/mem' : 'process_vm_readv'}(${this.pid})`,
        `read ${got} of ${this.pendingBytes} bytes, cannot read address 0x${missed.toString(16)}`);
    }
    this.bytesRead += got;
    this.localCount = 0;
    this.remoteCount = 0;
    this.pendingBytes = 0;
  }

  /** The kernel fills the remote iovecs in order and stops at the first page it cannot read. */
  private firstAddressNotRead(bytesRead: number): number {
    let left = bytesRead;
    for (let w = 0; w < this.remoteCount * IOVEC_WORDS; w += IOVEC_WORDS) {
      const length = this.remote[w + 2];
      if (left < length) return fromWords(this.remote[w], this.remote[w + 1]) + left;
      left -= length;
    }
    return this.lastRemoteEnd;
  }
}

/** Every length written here is below 4 GiB: its high word is 0. */
export function setIovec(words: Uint32Array, w: number, base: number, length: number): void {
  words[w] = base >>> 0;
  words[w + 1] = highWord(base);
  words[w + 2] = length;
  words[w + 3] = 0;
}

let singleRangeReader: RemoteReader | undefined;

/** `length` bytes of pid's memory at addr (NativeError as RemoteReader.commit throws). */
export function readMemory(pid: number, addr: number, length: number): Buffer {
  const out = length >= PAGE_SIZE ? pageAlignedBuffer(length) : Buffer.alloc(length);
  singleRangeReader ??= new RemoteReader(1);
  singleRangeReader.begin(pid, out);
  singleRangeReader.add(0, addr, length);
  singleRangeReader.commit();
  return out;
}

/**
 * `length` bytes of pid's memory at addr, read through /proc/<pid>/mem, which reads what a tracer
 * may, whatever the protection: memory the process made PROT_NONE too.
 */
export function readMemoryForced(pid: number, addr: number, length: number): Buffer {
  const out = length >= PAGE_SIZE ? pageAlignedBuffer(length) : Buffer.alloc(length);
  const mem = openSync(`/proc/${pid}/mem`, 'r');
  try {
    const got = readSync(mem, out, 0, length, addr);
    if (got !== length) throw nativeError(constants.errno.EIO, `read(/proc/${pid}/mem)`, `read ${got} of ${length} bytes at 0x${addr.toString(16)}`);
  } finally {
    closeSync(mem);
  }
  return out;
}

/** Writes data at address through memFd, an open /proc/<pid>/mem, which writes what a tracer may, whatever the protection. */
export function writeMemoryAt(memFd: number, pid: number, address: number, data: Buffer): void {
  const written = writeSync(memFd, data, 0, data.length, address);
  if (written !== data.length) {
    throw nativeError(constants.errno.EIO, `write(/proc/${pid}/mem)`, `wrote ${written} of ${data.length} bytes at 0x${address.toString(16)}`);
  }
}

/** writeMemoryAt, opening /proc/<pid>/mem for the one write. */
export function writeMemoryForced(pid: number, address: number, data: Buffer): void {
  const mem = openSync(`/proc/${pid}/mem`, 'r+');
  try {
    writeMemoryAt(mem, pid, address, data);
  } finally {
    closeSync(mem);
  }
}
