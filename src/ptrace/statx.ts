// stat(2) of a target's files without asking their file system: statx with AT_STATX_DONT_SYNC
// answers from what the kernel holds. A file on a FUSE mount would otherwise be a request to that
// file system, and on this very mount one only our main thread can answer, which is the thread
// asking (`ls -l /mnt/img/<pid>` holds the mount's directory open while it stats its own files).

import { constants as fsConstants } from 'node:fs';
import { check, libc } from './libc.js';
import { AT_FDCWD } from './syscalls.js';

const rawStatx = libc.func('int statx(int dirfd, const char *path, int flags, unsigned int mask, void *buf)');
const AT_STATX_DONT_SYNC = 0x4000;
const STATX_BASIC_STATS = 0x7ff;
const STATX_SIZE = 256;

/** The fields of a stat imgfs uses, with Node's encodings (dev and rdev as glibc's makedev). */
export class FileStat {
  constructor(
    readonly mode: number,
    readonly nlink: number,
    readonly size: bigint,
    readonly dev: bigint,
    readonly ino: bigint,
    readonly rdev: bigint,
    readonly mtimeNs: bigint,
    readonly uid: number,
    readonly gid: number,
  ) {}

  isFile(): boolean {
    return (this.mode & fsConstants.S_IFMT) === fsConstants.S_IFREG;
  }

  isFIFO(): boolean {
    return (this.mode & fsConstants.S_IFMT) === fsConstants.S_IFIFO;
  }

  isSocket(): boolean {
    return (this.mode & fsConstants.S_IFMT) === fsConstants.S_IFSOCK;
  }

  isCharacterDevice(): boolean {
    return (this.mode & fsConstants.S_IFMT) === fsConstants.S_IFCHR;
  }
}

/** glibc's gnu_dev_makedev. */
function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** The file path leads to (symbolic links followed), as the kernel last knew it. Throws NativeError. */
export function statCached(path: string): FileStat {
  const buf = Buffer.alloc(STATX_SIZE);
  check(rawStatx(AT_FDCWD, path, AT_STATX_DONT_SYNC, STATX_BASIC_STATS, buf) as number, () => `statx(${path})`);
  return new FileStat(
    buf.readUInt16LE(28),
    buf.readUInt32LE(16),
    buf.readBigUInt64LE(40),
    makedev(buf.readUInt32LE(136), buf.readUInt32LE(140)),
    buf.readBigUInt64LE(32),
    makedev(buf.readUInt32LE(128), buf.readUInt32LE(132)),
    buf.readBigInt64LE(112) * 1_000_000_000n + BigInt(buf.readUInt32LE(120)),
    buf.readUInt32LE(20),
    buf.readUInt32LE(24),
  );
}
