// The bytes waiting in another process's pipe, read without taking them: opening
// /proc/<pid>/fd/<n> opens that very pipe, and tee(2) duplicates its buffers into a pipe of ours,
// from which we read, leaving the process's pipe as it was.

import { closeSync, constants as fsConstants, openSync, readSync } from 'node:fs';
import { constants } from 'node:os';
import type { PipeData } from '../extension-model.js';
import { check, libc, nativeError, rawIoctl } from './libc.js';
import { O_CLOEXEC } from './remote.js';
import { FIONREAD, F_GETPIPE_SZ, F_SETPIPE_SZ } from './syscalls.js';

const rawPipe2 = libc.func('int pipe2(void *fds, int flags)');
const rawTee = libc.func('intptr_t tee(int fdIn, int fdOut, size_t len, unsigned int flags)');
const rawFcntl = libc.func('int fcntl(int fd, int cmd, int arg)');
const SPLICE_F_NONBLOCK = 2;

/** The capacity of the pipe at path (a /proc/<pid>/fd/<n> link) and the bytes in it. */
export function peekPipe(path: string): PipeData {
  const fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | O_CLOEXEC);
  const ends = new Int32Array([-1, -1]);
  try {
    const capacity = check(rawFcntl(fd, F_GETPIPE_SZ, 0) as number, () => `F_GETPIPE_SZ(${path})`);
    const count = new Int32Array(1);
    check(rawIoctl(fd, FIONREAD, count) as number, () => `FIONREAD(${path})`);
    const bytes = Buffer.alloc(count[0]);
    if (bytes.length === 0) return { capacity, bytes };
    check(rawPipe2(ends, O_CLOEXEC | fsConstants.O_NONBLOCK) as number, () => 'pipe2');
    // As many buffers as the pipe has, so that one tee takes all of them.
    check(rawFcntl(ends[1], F_SETPIPE_SZ, capacity) as number, () => `F_SETPIPE_SZ(${capacity})`);
    const teed = check(Number(rawTee(fd, ends[1], bytes.length, SPLICE_F_NONBLOCK)), () => `tee(${path})`);
    if (teed !== bytes.length) throw nativeError(constants.errno.EIO, `tee(${path})`, `copied ${teed} of the ${bytes.length} bytes in the pipe`);
    for (let done = 0; done < teed;) done += readSync(ends[0], bytes, done, teed - done, null);
    return { capacity, bytes };
  } finally {
    closeSync(fd);
    for (const end of ends) if (end >= 0) closeSync(end);
  }
}
