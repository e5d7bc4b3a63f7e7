// The file locks the process held, taken again through its restored descriptors: flock(2), POSIX
// record locks (F_SETLK: owned by the process, as lockf's are) and open-file-description locks
// (F_OFD_SETLK). Never waited for: a lock another process holds now is a warning, and the
// restored process runs without it.

import { describeLock, type ExtensionFd, type FileLock } from '../extension-model.js';
import { NativeError } from '../ptrace/errors.js';
import type { RemoteTask } from '../ptrace/remote.js';
import { SEEK_SET } from '../ptrace/syscalls.js';

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const F_SETLK = 6;
const F_OFD_SETLK = 37;
const F_RDLCK = 0;
const F_WRLCK = 1;
/** struct flock on x86_64: l_type, l_whence, l_start, l_len, l_pid. */
const FLOCK_STRUCT_SIZE = 32;

/** Takes each recorded lock of the descriptors that were made again (`restored`). */
export function takeLocks(remote: RemoteTask, fds: readonly ExtensionFd[], restored: ReadonlySet<number>, warn: (line: string) => void): void {
  for (const fd of fds) {
    if (!fd.locks || !restored.has(fd.fd)) continue;
    for (const lock of fd.locks) {
      try {
        takeLock(remote, fd.fd, lock);
      } catch (err) {
        if (!(err instanceof NativeError)) throw err;
        warn(`fd ${fd.fd} (${fd.target}): its ${describeLock(lock)} cannot be taken again (${err.code}): the process runs without it`);
      }
    }
  }
}

function takeLock(remote: RemoteTask, fd: number, lock: FileLock): void {
  if (lock.kind === 'flock') {
    remote.flock(fd, (lock.write ? LOCK_EX : LOCK_SH) | LOCK_NB);
    return;
  }
  const request = Buffer.alloc(FLOCK_STRUCT_SIZE);
  request.writeInt16LE(lock.write ? F_WRLCK : F_RDLCK, 0);
  request.writeInt16LE(SEEK_SET, 2);
  request.writeBigInt64LE(BigInt(lock.start), 8);
  // l_len 0: to the end of the file, however long it grows.
  request.writeBigInt64LE(lock.end === null ? 0n : BigInt(lock.end - lock.start + 1), 16);
  remote.fcntlWithData(fd, lock.kind === 'ofd' ? F_OFD_SETLK : F_SETLK, request);
}
