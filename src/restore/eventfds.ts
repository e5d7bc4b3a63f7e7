// The descriptors of an event loop, made again in the restored task: pipes and socket pairs with
// both ends in the process (self-pipes), eventfds, epoll instances, timerfds, signalfds, inotify
// instances with their watches, and userfaultfds. Each
// is created by an injected call at whatever number the kernel picks, then put at every recorded
// number with its own close-on-exec flag; its O_NONBLOCK is its open file description's, shared by
// those numbers. Epoll registrations come last, once every descriptor they name exists.

import { constants as fsConstants } from 'node:fs';
import { constants } from 'node:os';
import { AF_UNIX, SOCK_STREAM, type ExtensionFd, type InotifyWatch, type PipeData, type PipeEnds, type SocketPairEnds, type TimerFdState, type UserfaultfdState } from '../extension-model.js';
import { NativeError } from '../ptrace/errors.js';
import type { RemoteTask } from '../ptrace/remote.js';
import { O_CLOEXEC } from '../ptrace/remote.js';
import { F_GETPIPE_SZ, F_SETFL, F_SETPIPE_SZ } from '../ptrace/syscalls.js';
import { uffdioApi, UFFDIO_API } from '../ptrace/userfault.js';

const { O_NONBLOCK } = fsConstants;
const F_SETFD = 2;
const F_DUPFD = 0;
/** What one injected write of a pipe's bytes takes (the stub's scratch area is 12 KiB). */
const PIPE_WRITE_CHUNK = 8192;
const EFD_SEMAPHORE = 1;
const EPOLL_CTL_ADD = 1;
/** _IOW('T', 0, __u64): sets a timerfd's expiration count (CONFIG_CHECKPOINT_RESTORE). */
const TFD_IOC_SET_TICKS = 0x4008_5400;
const U32_MAX = 0xffff_ffff;
const IN_DELETE_SELF = 0x400;
const UFFD_USER_MODE_ONLY = 1;
/** How many watch descriptors a restore uses up to reach a recorded one, at most. */
const INOTIFY_CATCH_UP_MAX = 1 << 16;

/** Whether a recorded descriptor is one this module makes again. */
export const isEventObject = (fd: ExtensionFd): boolean =>
  fd.eventfd !== undefined || fd.epoll !== undefined || fd.timerfd !== undefined || fd.signalfd !== undefined || fd.inotify !== undefined ||
  fd.userfaultfd !== undefined;

/**
 * Creates a pipe with the capacity and bytes it had (a self-pipe's unread bytes are what wakes its
 * event loop: libuv's signal lock, for one, is a byte that must be there) and puts its ends at
 * every recorded number.
 */
export function restorePipe(remote: RemoteTask, { read, write }: PipeEnds, warn: (line: string) => void): void {
  const [readEnd, writeEnd] = remote.pipe2(O_CLOEXEC);
  const data = read.find((fd) => fd.pipeData)?.pipeData;
  if (data) refillPipe(remote, writeEnd, data, `pipe fd ${read[0].fd}`, warn);
  placeBothEnds(remote, [readEnd, writeEnd], [read, write]);
}

/**
 * The read end of a pipe whose write end was another process's (a child's output, say): a new
 * pipe whose write end is closed, with one warning, so that the program reads the end of it and
 * poll and epoll report the hang-up, as when that writer exits, where /dev/null would read the same
 * but could not be watched by epoll. Its unread bytes are not in the image.
 */
export function restoreWriterlessPipe(remote: RemoteTask, readEnds: readonly ExtensionFd[], warn: (line: string) => void): void {
  const [readEnd, writeEnd] = remote.pipe2(O_CLOEXEC);
  remote.close(writeEnd);
  warn(`fd ${readEnds[0].fd} (${readEnds[0].target}): its write end is another process's: it comes back as a pipe whose writer has gone (reads end)`);
  placeEverywhere(remote, readEnd, readEnds);
}

/**
 * Creates a socket pair (a self-pipe made with socketpair(2)), gives each end the bytes that were
 * waiting to be read from it (sent through the other end, so they arrive in its queue: asyncio's
 * wake-up byte, say), and puts its ends at their numbers.
 */
export function restoreSocketPair(remote: RemoteTask, { type, ends }: SocketPairEnds, warn: (line: string) => void): void {
  const created = remote.socketpair(AF_UNIX, type | O_CLOEXEC);
  ends.forEach((end, i) => {
    const queued = end.find((fd) => fd.queued)?.queued;
    if (!queued) return;
    const pieces = type === SOCK_STREAM ? chunks(queued[0]) : queued;
    writeWithoutWaiting(remote, created[1 - i], pieces, `socket fd ${end[0].fd}: what waits to be read from it`, warn);
  });
  placeBothEnds(remote, created, ends);
}

/** Puts two new descriptors at their recorded numbers: created[i] at every number of numbers[i]. */
function placeBothEnds(remote: RemoteTask, created: [number, number], numbers: [readonly ExtensionFd[], readonly ExtensionFd[]]): void {
  let [first, second] = created;
  // Putting the first at its numbers must not close the second sitting at one of them.
  if (numbers[0].some((fd) => fd.fd === second)) {
    const above = Math.max(...numbers[0].map((fd) => fd.fd), ...numbers[1].map((fd) => fd.fd)) + 1;
    const moved = remote.fcntl(second, F_DUPFD, above);
    remote.close(second);
    second = moved;
  }
  placeEverywhere(remote, first, numbers[0]);
  placeEverywhere(remote, second, numbers[1]);
}

/**
 * Gives a new pipe the recorded capacity and writes the recorded bytes into it, never waiting: a
 * pipe that cannot be made as large (a capacity above pipe-max-size without CAP_SYS_RESOURCE) gets
 * what fits, with a warning.
 */
function refillPipe(remote: RemoteTask, writeEnd: number, data: PipeData, what: string, warn: (line: string) => void): void {
  if (remote.fcntl(writeEnd, F_GETPIPE_SZ, 0) !== data.capacity) {
    try {
      remote.fcntl(writeEnd, F_SETPIPE_SZ, data.capacity);
    } catch (err) {
      warn(`${what}: its capacity of ${data.capacity} bytes is not restored: ${(err as Error).message}`);
    }
  }
  writeWithoutWaiting(remote, writeEnd, chunks(data.bytes), `${what}: what it held`, warn);
}

/**
 * Writes pieces into a new descriptor in turn, never waiting: a pipe's or stream socket's bytes in
 * chunks the scratch area holds, a datagram or seqpacket socket's messages each whole. What does
 * not fit (the new one is full, or a message is larger than the scratch area) is lost, with a
 * warning.
 */
function writeWithoutWaiting(remote: RemoteTask, fd: number, pieces: readonly Buffer[], what: string, warn: (line: string) => void): void {
  const total = pieces.reduce((sum, piece) => sum + piece.length, 0);
  let written = 0;
  remote.fcntl(fd, F_SETFL, O_NONBLOCK);
  try {
    for (const piece of pieces) {
      if (piece.length > PIPE_WRITE_CHUNK) continue;
      const n = remote.write(fd, piece);
      written += n;
      if (n < piece.length) break;
    }
  } catch (err) {
    if (!(err instanceof NativeError && err.errno === constants.errno.EAGAIN)) throw err;
  }
  remote.fcntl(fd, F_SETFL, 0);
  if (written < total) warn(`${what}: ${total - written} of its ${total} bytes do not fit: lost`);
}

/** A stream's bytes as pieces for writeWithoutWaiting. */
function chunks(bytes: Buffer): Buffer[] {
  return Array.from({ length: Math.ceil(bytes.length / PIPE_WRITE_CHUNK) }, (_, i) => bytes.subarray(i * PIPE_WRITE_CHUNK, (i + 1) * PIPE_WRITE_CHUNK));
}

/** Creates an eventfd, epoll instance, timerfd or signalfd as recorded and puts it at its number. */
export function restoreEventObject(remote: RemoteTask, fd: ExtensionFd, warn: (line: string) => void): void {
  placeEverywhere(remote, createEventObject(remote, fd, warn), [fd]);
}

function createEventObject(remote: RemoteTask, fd: ExtensionFd, warn: (line: string) => void): number {
  if (fd.eventfd) {
    const { count, semaphore } = fd.eventfd;
    const created = remote.eventfd2(count <= U32_MAX ? Number(count) : 0, O_CLOEXEC | (semaphore ? EFD_SEMAPHORE : 0));
    if (count > U32_MAX) remote.write(created, counter(count));
    return created;
  }
  if (fd.timerfd) return createTimerFd(remote, fd, fd.timerfd, warn);
  if (fd.signalfd) return remote.signalfd4(fd.signalfd.mask, O_CLOEXEC);
  if (fd.inotify) return createInotify(remote, fd, fd.inotify, warn);
  if (fd.userfaultfd) return createUserfaultfd(remote, fd, fd.userfaultfd, warn);
  return remote.epollCreate1(O_CLOEXEC);
}

/**
 * A userfaultfd with its UFFDIO_API handshake made again: the program's handler reads it as
 * before. The ranges it was registered on are registered again with the VMA flags
 * (AddressSpace.restoreVmaFlags), once every descriptor and VMA is in place. Without the
 * privilege to handle faults the kernel takes (vm.unprivileged_userfaultfd 0), one that handles
 * user-space faults only, as the program's own call would have had to be.
 */
function createUserfaultfd(remote: RemoteTask, fd: ExtensionFd, state: UserfaultfdState, warn: (line: string) => void): number {
  let created: number;
  try {
    created = remote.userfaultfd(O_CLOEXEC);
  } catch (err) {
    if (!(err instanceof NativeError) || err.errno !== constants.errno.EPERM) throw err;
    created = remote.userfaultfd(O_CLOEXEC | UFFD_USER_MODE_ONLY);
  }
  if (state.features === null) return created;
  try {
    remote.ioctlWithData(created, UFFDIO_API, uffdioApi(state.features));
  } catch (err) {
    if (!(err instanceof NativeError)) throw err;
    warn(`fd ${fd.fd} (${fd.target}): its features 0x${state.features.toString(16)} are refused here (${err.code}): it takes no registration`);
  }
  return created;
}

/**
 * An inotify instance watching what it watched under the same watch descriptors, which the
 * program knows them by. The kernel hands descriptors out in ascending order: one below the
 * wanted one is used up (added and removed again: the instance then holds an IN_IGNORED event for
 * a descriptor the program never had), and a watch whose path is gone takes its descriptor the
 * same way, with a placeholder path, its IN_IGNORED event telling the program that it ended, as
 * for a watched directory removed. Events queued at the dump are not in the image.
 */
function createInotify(remote: RemoteTask, fd: ExtensionFd, watches: readonly InotifyWatch[], warn: (line: string) => void): number {
  const created = remote.inotifyInit1(O_CLOEXEC);
  const add = (path: string, mask: number) => remote.inotifyAddWatch(created, path, mask);
  const placeholder = ['/', '/proc', '/sys', '/dev'].find((path) => !watches.some((w) => w.path === path))!;
  for (const watch of watches) {
    const what = `fd ${fd.fd} (${fd.target}): watch ${watch.wd} on ${watch.path ?? `inode ${watch.inode}`}`;
    const behind = (wd: number) => wd < watch.wd && watch.wd - wd <= INOTIFY_CATCH_UP_MAX;
    let wd = -1;
    if (watch.path === null) {
      warn(`${what}: its path is not in the image: ended (IN_IGNORED)`);
    } else {
      try {
        for (wd = add(watch.path, watch.mask); behind(wd); wd = add(watch.path, watch.mask)) remote.inotifyRmWatch(created, wd);
      } catch (err) {
        if (!(err instanceof NativeError)) throw err;
        warn(`${what} cannot be added again (${err.code}): ended (IN_IGNORED)`);
        wd = -1;
      }
    }
    if (wd === -1) {
      do {
        wd = add(placeholder, IN_DELETE_SELF);
        remote.inotifyRmWatch(created, wd);
      } while (behind(wd));
    }
    if (wd !== watch.wd) warn(`${what} gets descriptor ${wd}: the kernel hands out no lower one now`);
  }
  return created;
}

/**
 * A timerfd armed with the time that was left at the dump (relative, whatever its settime flags
 * were). A periodic timer that had expired unread shows no time left: it expires at once again.
 */
function createTimerFd(remote: RemoteTask, fd: ExtensionFd, timer: TimerFdState, warn: (line: string) => void): number {
  const created = remote.timerfdCreate(timer.clock, O_CLOEXEC);
  const expired = isZero(timer.value) && !isZero(timer.interval);
  if (expired || !isZero(timer.value)) remote.timerfdSettime(created, timer.interval, expired ? { sec: 0, nsec: 1 } : timer.value);
  const ticks = expired ? timer.ticks - 1n : timer.ticks;
  if (ticks > 0n) {
    try {
      remote.ioctlWithData(created, TFD_IOC_SET_TICKS, counter(ticks));
    } catch (err) {
      if (!(err instanceof NativeError)) throw err;
      warn(`fd ${fd.fd} (${fd.target}): its ${ticks} unread expirations cannot be set (${err.code}): lost`);
    }
  }
  return created;
}

const isZero = ({ sec, nsec }: { sec: number; nsec: number }): boolean => sec === 0 && nsec === 0;

function counter(value: bigint): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64LE(value);
  return buf;
}

/**
 * Puts a descriptor the stub created (close-on-exec, blocking) at each recorded number with that
 * number's close-on-exec flag, and gives the open file description the first one's O_NONBLOCK.
 */
export function placeEverywhere(remote: RemoteTask, created: number, fds: readonly ExtensionFd[]): void {
  try {
    if ((fds[0].flags & O_NONBLOCK) !== 0) remote.fcntl(created, F_SETFL, O_NONBLOCK);
    for (const fd of fds) {
      if (fd.fd !== created) remote.dup3(created, fd.fd, fd.flags & O_CLOEXEC);
      else if ((fd.flags & O_CLOEXEC) === 0) remote.fcntl(created, F_SETFD, 0);
    }
  } finally {
    if (!fds.some((fd) => fd.fd === created)) remote.close(created);
  }
}

/**
 * Registers with each restored epoll instance the descriptors it watched, with their events and
 * data. A target that was not made again (a socket now /dev/null, a descriptor gone) is skipped
 * with a warning: the program waits on it in vain, as it would on a dead peer.
 */
export function registerEpollTargets(remote: RemoteTask, fds: readonly ExtensionFd[], restored: ReadonlySet<number>, warn: (line: string) => void): void {
  for (const fd of fds) {
    if (!fd.epoll || !restored.has(fd.fd)) continue;
    for (const target of fd.epoll) {
      const what = `epoll fd ${fd.fd}: target fd ${target.fd}`;
      if (!restored.has(target.fd)) {
        warn(`${what} was not restored: not watched`);
        continue;
      }
      try {
        remote.epollCtl(fd.fd, EPOLL_CTL_ADD, target.fd, target.events, target.data);
      } catch (err) {
        if (!(err instanceof NativeError)) throw err;
        warn(`${what} cannot be watched again (${err.code}): not watched`);
      }
    }
  }
}
