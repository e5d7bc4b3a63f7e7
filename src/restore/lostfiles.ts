// Files no path leads to any more, made again from the bytes the image carries (FILE_CONTENT): a
// memfd as a memfd of the same name with the same seals, a deleted file as an unnamed file
// (O_TMPFILE) in the directory it was in. Every descriptor of one is opened anew on the one made.

import { closeSync, openSync, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { ExtensionFd, FileContent } from '../extension-model.js';
import { DELETED_SUFFIX } from '../proc/deleted.js';
import { NativeError } from '../ptrace/errors.js';
import { O_CLOEXEC, type RemoteTask } from '../ptrace/remote.js';

const MEMFD_PREFIX = '/memfd:';
const MFD_CLOEXEC = 1;
const MFD_ALLOW_SEALING = 2;
/** O_TMPFILE on x86_64 (it includes O_DIRECTORY). */
const O_TMPFILE = 0o20200000;
const O_RDWR = 2;
const F_DUPFD_CLOEXEC = 1030;
const F_ADD_SEALS = 1033;

export class LostFiles {
  /** By target: the descriptor that carries the file's bytes. */
  private readonly carriers: Map<string, ExtensionFd & { content: FileContent }>;
  /** By target: the file made again, at a number above every recorded one. */
  private readonly made = new Map<string, number>();
  private readonly above: number;

  constructor(private readonly remote: RemoteTask, fds: readonly ExtensionFd[]) {
    this.carriers = new Map(fds.flatMap((fd) => (fd.content ? [[fd.target, { ...fd, content: fd.content }] as const] : [])));
    this.above = Math.max(0, ...fds.map((fd) => fd.fd)) + 1;
  }

  /** Whether the image carries the bytes of the file fd had open. */
  has(fd: ExtensionFd): boolean {
    return fd.kind === 'file' && this.carriers.has(fd.target);
  }

  /** A new descriptor of the file fd had open (made on first use), with fd's open flags. */
  open(fd: ExtensionFd, flags: number, warn: (line: string) => void): number {
    let made = this.made.get(fd.target);
    if (made === undefined) {
      made = this.make(this.carriers.get(fd.target)!, warn);
      this.made.set(fd.target, made);
    }
    return this.remote.openat(`/proc/self/fd/${made}`, flags);
  }

  /** Closes the files made: the recorded descriptors hold them now. */
  close(): void {
    for (const made of this.made.values()) this.remote.close(made);
  }

  private make(carrier: ExtensionFd & { content: FileContent }, warn: (line: string) => void): number {
    const { content } = carrier;
    const path = carrier.target.slice(0, -DELETED_SUFFIX.length);
    let created: number;
    if (content.memfd) {
      // Made sealable, then sealed as it was: one that was not sealable had F_SEAL_SEAL among its seals.
      created = this.remote.memfdCreate(path.slice(MEMFD_PREFIX.length), MFD_CLOEXEC | MFD_ALLOW_SEALING);
    } else {
      try {
        created = this.remote.openat(dirname(path), O_TMPFILE | O_RDWR | O_CLOEXEC, content.mode);
      } catch (err) {
        if (!(err instanceof NativeError)) throw err;
        warn(`fd ${carrier.fd} (${carrier.target}): no unnamed file can be made in its directory (${err.code}): a memfd holds its bytes`);
        created = this.remote.memfdCreate(basename(path), MFD_CLOEXEC);
      }
    }
    const high = this.remote.fcntl(created, F_DUPFD_CLOEXEC, this.above);
    this.remote.close(created);
    const bytes = Buffer.isBuffer(content.bytes) ? content.bytes : content.bytes.read();
    // Written from here, through the stub's descriptor: one call, whatever the size.
    const ours = openSync(`/proc/${this.remote.tid}/fd/${high}`, 'r+');
    try {
      writeSync(ours, bytes, 0, bytes.length, 0);
    } finally {
      closeSync(ours);
    }
    if (content.seals !== 0) this.remote.fcntl(high, F_ADD_SEALS, content.seals);
    return high;
  }
}
