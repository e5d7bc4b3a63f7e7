// Files no path leads to any more, made again from the bytes the image carries (FILE_CONTENT): a
// memfd as a memfd of the same name with the same seals, a deleted file as an unnamed file
// (O_TMPFILE) in the directory it was in. Every descriptor of one is opened anew on the one made.
// The shared memory the process mapped from such a file (carried in SHARED_PAGES and mapped by
// then) is mapped from the file made: a write through a descriptor shows through the mapping, as
// before. A memfd too large for its bytes to travel with its descriptor is made from its mappings.

import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { basename, dirname } from 'node:path';
import type { ExtensionFd, FileContent } from '../extension-model.js';
import { MAP_SHARED } from '../format.js';
import { DELETED_SUFFIX } from '../proc/deleted.js';
import { NativeError } from '../ptrace/errors.js';
import { readMemoryForced } from '../ptrace/memory.js';
import { O_CLOEXEC, type RemoteTask } from '../ptrace/remote.js';
import type { MappedObject } from './addressspace.js';

const { EINVAL } = osConstants.errno;
const MEMFD_PREFIX = '/memfd:';
const MFD_CLOEXEC = 1;
const MFD_ALLOW_SEALING = 2;
/** O_TMPFILE on x86_64 (it includes O_DIRECTORY). */
const O_TMPFILE = 0o20200000;
const O_RDWR = 2;
const O_NOFOLLOW = 0o400000;
const MAP_FIXED = 0x10;
const F_DUPFD_CLOEXEC = 1030;
const F_ADD_SEALS = 1033;
const F_SEAL_SEAL = 1;
const F_SEAL_FUTURE_WRITE = 0x10;
/**
 * Seals added after the mappings: a mapping may have been made before them (a writable one before
 * F_SEAL_FUTURE_WRITE), and F_SEAL_SEAL ends the sealing. The others come first: under F_SEAL_WRITE
 * a shared mapping is made read-only for good, as the process's was.
 */
const LATE_SEALS = F_SEAL_FUTURE_WRITE | F_SEAL_SEAL;
/** Bytes copied per round from a mapping into the file made. */
const COPY_CHUNK = 4 << 20;

/** What tells files apart: device and inode where the image has them (two memfds may share a name). */
function objectKey(fd: ExtensionFd): string {
  return fd.fileState ? `${fd.fileState.dev}:${fd.fileState.inode}` : fd.target;
}

export class LostFiles {
  /** By object: the descriptor that carries the file's bytes. */
  private readonly carriers: Map<string, ExtensionFd & { content: FileContent }>;
  /** By object: the file made again, at a number above every recorded one. */
  private readonly made = new Map<string, number>();
  private readonly above: number;

  /** mapped: the shared VMAs whose contents the image carried, with the objects they map. */
  constructor(private readonly remote: RemoteTask, fds: readonly ExtensionFd[], private readonly mapped: readonly MappedObject[]) {
    this.carriers = new Map(fds.flatMap((fd) => (fd.content ? [[objectKey(fd), { ...fd, content: fd.content }] as const] : [])));
    this.above = Math.max(0, ...fds.map((fd) => fd.fd)) + 1;
  }

  /** Whether the image carries the bytes of the file fd had open, with it or in its mappings. */
  has(fd: ExtensionFd): boolean {
    if (fd.kind !== 'file') return false;
    return this.carriers.has(objectKey(fd)) || (fd.target.startsWith(MEMFD_PREFIX) && this.mappingsOf(fd).length > 0);
  }

  /**
   * A new descriptor of the file fd had open (made on first use), with fd's open flags, but
   * O_NOFOLLOW (Python's TemporaryFile has it): the file is reached through /proc/self/fd, a link.
   */
  open(fd: ExtensionFd, flags: number, warn: (line: string) => void): number {
    const key = objectKey(fd);
    let made = this.made.get(key);
    if (made === undefined) {
      made = this.make(fd, warn);
      this.made.set(key, made);
    }
    return this.remote.openat(`/proc/self/fd/${made}`, flags & ~O_NOFOLLOW);
  }

  /** Closes the files made: the recorded descriptors hold them now. */
  close(): void {
    for (const made of this.made.values()) this.remote.close(made);
  }

  private mappingsOf(fd: ExtensionFd): MappedObject[] {
    const state = fd.fileState;
    return state ? this.mapped.filter((m) => m.dev === state.dev && m.inode === state.inode) : [];
  }

  private make(fd: ExtensionFd, warn: (line: string) => void): number {
    const content = this.carriers.get(objectKey(fd))?.content;
    const mappings = this.mappingsOf(fd);
    const high = this.create(fd, content, warn);
    if (content) writeInto(this.remote, high, Buffer.isBuffer(content.bytes) ? content.bytes : content.bytes.read());
    else {
      const ours = openSync(`/proc/${this.remote.tid}/fd/${high}`, 'r+');
      try {
        this.fillFromMappings(ours, fd, mappings, warn);
      } finally {
        closeSync(ours);
      }
    }
    const seals = content?.seals ?? 0;
    if (seals & ~LATE_SEALS) this.remote.fcntl(high, F_ADD_SEALS, seals & ~LATE_SEALS);
    for (const m of mappings) this.remote.mmap(m.start, m.end - m.start, m.prot, MAP_SHARED | MAP_FIXED, high, m.offset);
    if (seals & LATE_SEALS) this.remote.fcntl(high, F_ADD_SEALS, seals & LATE_SEALS);
    return high;
  }

  /** An empty file of fd's kind, at a number above every recorded descriptor. */
  private create(fd: ExtensionFd, content: FileContent | undefined, warn: (line: string) => void): number {
    const path = fd.target.slice(0, -DELETED_SUFFIX.length);
    let created: number;
    if (!content || content.memfd) {
      // Made sealable, then sealed as it was: one that was not sealable had F_SEAL_SEAL among its seals.
      created = this.remote.memfdCreate(memfdNameFor(path), MFD_CLOEXEC | MFD_ALLOW_SEALING);
    } else {
      try {
        created = this.remote.openat(dirname(path), O_TMPFILE | O_RDWR | O_CLOEXEC, content.mode);
      } catch (err) {
        if (!(err instanceof NativeError)) throw err;
        warn(`fd ${fd.fd} (${fd.target}): no unnamed file can be made in its directory (${err.code}): a memfd holds its bytes`);
        created = this.remote.memfdCreate(memfdNameFor(path), MFD_CLOEXEC);
      }
    }
    const high = this.remote.fcntl(created, F_DUPFD_CLOEXEC, this.above);
    this.remote.close(created);
    return high;
  }

  /**
   * A memfd whose bytes did not travel with its descriptor: its size, and what its mappings hold
   * (read whatever their protection); the rest reads as zeros,
   * with a warning. Chunks of zeros are not written: the file stays as sparse as they were.
   */
  private fillFromMappings(ours: number, fd: ExtensionFd, mappings: readonly MappedObject[], warn: (line: string) => void): void {
    const size = fd.fileState!.size; // has() made it only with its mappings, found by fileState
    ftruncateSync(ours, size);
    const covered: [number, number][] = [];
    const zeros = Buffer.alloc(COPY_CHUNK);
    for (const m of mappings) {
      const end = Math.min(m.offset + (m.end - m.start), size);
      for (let at = m.offset; at < end; at += COPY_CHUNK) {
        const length = Math.min(COPY_CHUNK, end - at);
        const bytes = readMemoryForced(this.remote.tid, m.start + (at - m.offset), length);
        if (!bytes.equals(zeros.subarray(0, length))) writeSync(ours, bytes, 0, length, at);
      }
      if (m.offset < end) covered.push([m.offset, end]);
    }
    const missing = size - coveredLength(covered);
    if (missing > 0) {
      warn(`fd ${fd.fd} (${fd.target}): too large for its bytes to travel with it; what its mappings held comes back, the other ${missing} bytes read as zeros`);
    }
  }
}

/** Writes bytes at the start of the stub's file fd, from here: one call, whatever the size. */
function writeInto(remote: RemoteTask, fd: number, bytes: Buffer): void {
  const ours = openSync(`/proc/${remote.tid}/fd/${fd}`, 'r+');
  try {
    writeSync(ours, bytes, 0, bytes.length, 0);
  } finally {
    closeSync(ours);
  }
}

const MFD_EXEC = 0x10;

/**
 * The name a deleted file (its path without " (deleted)") is made again under as a memfd: a
 * memfd's own (memfd_create puts the "memfd:" before it itself), else the file's.
 */
export function memfdNameFor(path: string): string {
  return path.startsWith(MEMFD_PREFIX) ? path.slice(MEMFD_PREFIX.length) : basename(path);
}

/**
 * A memfd in the stub holding bytes, named name: a deleted program or library made again to be
 * mapped (MAPPED_CONTENT). Executable (MFD_EXEC, where vm.memfd_noexec would refuse it otherwise;
 * a kernel before 6.3 knows no such flag and makes it executable anyway).
 */
export function memfdHolding(remote: RemoteTask, name: string, bytes: Buffer): number {
  let fd: number;
  try {
    fd = remote.memfdCreate(name, MFD_CLOEXEC | MFD_EXEC);
  } catch (err) {
    if (!(err instanceof NativeError) || err.errno !== EINVAL) throw err;
    fd = remote.memfdCreate(name, MFD_CLOEXEC);
  }
  writeInto(remote, fd, bytes);
  return fd;
}

/** The bytes the ranges cover together. */
function coveredLength(ranges: [number, number][]): number {
  let total = 0;
  let reached = 0;
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (end > reached) total += end - Math.max(start, reached);
    reached = Math.max(reached, end);
  }
  return total;
}
