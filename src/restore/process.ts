// The per-process state of a restored task beyond its memory and threads: the mm bounds and brk
// (PR_SET_MM_MAP), the executable, its name, the working directory, the signal dispositions and
// the open files. Each is set by system calls the stub runs.

import { constants as fsConstants, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { basename } from 'node:path';
import {
  isPipeWriteEnd, pipesWithBothEnds, SIG_DFL, SIG_IGN, socketPairsWithBothEnds, type ExtensionFd, type ExtensionMappedFile, type ExtensionSigaction, type ImageExtension, type ThreadIdentity,
} from '../extension-model.js';
import { HEADER_SIZE, REGS_SIZE, type DecodedMm } from '../format.js';
import { ImageFormatError } from '../imagestream.js';
import { isDeleted, SECRET_MEMORY_PATH } from '../proc/deleted.js';
import { NativeError } from '../ptrace/errors.js';
import { readMemory } from '../ptrace/memory.js';
import type { RemoteTask } from '../ptrace/remote.js';
import { takeLocks } from './locks.js';
import type { MappedObject } from './addressspace.js';
import { LostFiles } from './lostfiles.js';
import { asDumpedUser } from './identity.js';
import { changeSinceDump } from './filechange.js';
import { restoreBoundSocket, restoreConnectedSocket, restoreNetlinkSocket, restoreUnboundSocket } from './sockets.js';
import { isEventObject, registerEpollTargets, restoreEventObject, restorePipe, restoreSocketPair, restoreWriterlessPipe } from './eventfds.js';
import { O_CLOEXEC } from '../ptrace/remote.js';
import { F_SETFL, O_ACCMODE, PR_SET_NAME, SEEK_SET } from '../ptrace/syscalls.js';

/** The mm record's image offset. */
const MM_OFFSET = HEADER_SIZE + REGS_SIZE;
const PR_SET_MM = 35;
const PR_SET_MM_MAP = 14;
/** struct prctl_mm_map: 11 u64 bounds, u64 auxv pointer, u32 auxv_size, u32 exe_fd. */
const PRCTL_MM_MAP_SIZE = 104;
/** Task names (comm) hold 15 bytes. */
const TASK_COMM_LEN = 15;
/** Enough of the argument area for any program name. */
const ARGV0_MAX = 256;
const { SIGKILL, SIGSTOP } = osConstants.signals;
const { O_RDWR, O_NOCTTY, O_CREAT, O_EXCL, O_TRUNC, O_DIRECTORY, O_NONBLOCK, O_APPEND } = fsConstants;
/** Flags that would change the file if it were opened again with them. */
const O_CREAT_EXCL_TRUNC = O_CREAT | O_EXCL | O_TRUNC;
/** O_TMPFILE's own bit (O_TMPFILE is it with O_DIRECTORY): in fdinfo's flags of a file opened with it. */
const __O_TMPFILE = 0o20000000;

/**
 * The flags a recorded file is opened again with: its own, but those that would change or make a
 * file (O_CREAT, O_TRUNC; O_TMPFILE, which opens a directory to make an unnamed file in it), and
 * O_NOCTTY: a terminal opened again does not become the controlling one.
 */
function reopenFlags(fd: ExtensionFd): number {
  const making = O_CREAT_EXCL_TRUNC | (fd.flags & __O_TMPFILE ? __O_TMPFILE | O_DIRECTORY : 0);
  return (fd.flags & ~making) | O_NOCTTY;
}

/**
 * Sets the mm bounds, the exact brk, the auxiliary vector and the executable with one
 * PR_SET_MM_MAP. Without an extension only the v0 bounds are known: the stub's auxv and
 * executable stay.
 */
export function setMmMap(remote: RemoteTask, mm: DecodedMm, ext: ImageExtension | null, warn: (line: string) => void): void {
  const exeFd = ext && !runsAlready(remote.tid, ext.exe) ? openExe(remote, ext.exe, ext.files, warn) : -1;
  try {
    const auxv = ext?.auxv ?? Buffer.alloc(0);
    const data = Buffer.alloc(PRCTL_MM_MAP_SIZE + auxv.length);
    const bounds = [
      mm.startCode, mm.endCode, mm.startData, mm.endData, mm.startBrk, ext ? BigInt(ext.brk) : mm.brk,
      mm.startStack, mm.argStart, mm.argEnd, mm.envStart, mm.envEnd,
    ];
    bounds.forEach((value, i) => data.writeBigUInt64LE(value, i * 8));
    data.writeBigUInt64LE(auxv.length > 0 ? BigInt(remote.scratchAddress + PRCTL_MM_MAP_SIZE) : 0n, 88);
    data.writeUInt32LE(auxv.length, 96);
    data.writeInt32LE(exeFd, 100);
    auxv.copy(data, PRCTL_MM_MAP_SIZE);
    try {
      setMap(remote, data, auxv.length);
    } catch (err) {
      // Naming the executable needs CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN); the bounds do not.
      if (!(err instanceof NativeError && err.errno === osConstants.errno.EPERM && exeFd >= 0)) throw err;
      data.writeInt32LE(-1, 100);
      setMap(remote, data, auxv.length);
      warn(`/proc/<pid>/exe names the restorer's stub, not ${ext!.exe}: setting it needs CAP_CHECKPOINT_RESTORE`);
    }
  } finally {
    if (exeFd >= 0) remote.close(exeFd);
  }
}

/** PR_SET_MM_MAP with its data (the struct, then auxv); a refusal is the image's mm record's fault. */
function setMap(remote: RemoteTask, data: Buffer, auxvLength: number): void {
  try {
    remote.prctlWithData(PR_SET_MM, PR_SET_MM_MAP, data, data.length - auxvLength);
  } catch (err) {
    if (!(err instanceof NativeError)) throw err;
    if (err.errno === osConstants.errno.EPERM && data.readInt32LE(100) >= 0) throw err;
    const [brk, stack] = [data.readBigUInt64LE(5 * 8), data.readBigUInt64LE(6 * 8)];
    throw new ImageFormatError(MM_OFFSET, `the kernel refuses the mm record's bounds (brk 0x${brk.toString(16)}, stack 0x${stack.toString(16)}): ${err.code}`);
  }
}

/**
 * Whether the stub already runs exe (an image of `sleep`, the stub's own program): then there is
 * no executable to set, and the kernel would refuse to (EBUSY: it replaces an executable only once
 * no mapping maps it, and the image's do).
 */
function runsAlready(pid: number, exe: string): boolean {
  try {
    const [running, wanted] = [statSync(`/proc/${pid}/exe`), statSync(exe)];
    return running.dev === wanted.dev && running.ino === wanted.ino;
  } catch {
    return false;
  }
}

function openExe(remote: RemoteTask, exe: string, files: readonly ExtensionMappedFile[], warn: (line: string) => void): number {
  // A program deleted since it started (an upgrade) is mapped from the bytes the image carries:
  // the mapping leads to that file (map_files, as root).
  const mapped = isDeleted(exe) ? files.find((f) => f.path === exe) : undefined;
  const path = mapped ? `/proc/self/map_files/${mapped.start.toString(16)}-${mapped.end.toString(16)}` : exe;
  try {
    return remote.openat(path, O_CLOEXEC);
  } catch (err) {
    if (!(err instanceof NativeError)) throw err;
    // map_files opens only with CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE): a privilege, not the file.
    const why = mapped && err.code === 'EPERM' ? `its carried bytes are reached through /proc/<pid>/map_files, which needs CAP_CHECKPOINT_RESTORE` : `it cannot be opened (${err.code})`;
    warn(`the executable ${exe}: ${why}: /proc/<pid>/exe names the restorer's stub instead`);
    return -1;
  }
}

/** The task's name as exec would have set it: the executable's file name, cut to 15 bytes. */
export function setName(remote: RemoteTask, exe: string): void {
  if (exe === '') return;
  remote.prctlString(PR_SET_NAME, Buffer.from(basename(exe)).subarray(0, TASK_COMM_LEN).toString());
}

/** argv[0] as the restored memory holds it ('' when it cannot be read). */
export function programName(pid: number, argStart: bigint): string {
  try {
    const args = readMemory(pid, Number(argStart), ARGV0_MAX);
    return args.subarray(0, Math.max(args.indexOf(0), 0)).toString();
  } catch {
    return '';
  }
}

export function setCwd(remote: RemoteTask, cwd: string, warn: (line: string) => void): void {
  try {
    remote.chdir(cwd);
  } catch (err) {
    if (!(err instanceof NativeError)) throw err;
    warn(`the working directory ${cwd} cannot be entered (${err.code}): the restorer's is kept`);
  }
}

/**
 * Every signal's disposition as the dump recorded it (SIGKILL and SIGSTOP have none); one the
 * restorer was started with ignored (nohup's SIGHUP) and the process left at its default is
 * ignored, as exec leaves an ignored signal ignored for the program it starts.
 */
export function setSigactions(remote: RemoteTask, actions: readonly ExtensionSigaction[], ignoredAtStart: ReadonlySet<number>): void {
  const action = Buffer.alloc(32);
  actions.forEach((a, i) => {
    const signal = i + 1;
    if (signal === SIGKILL || signal === SIGSTOP) return;
    const ignored = a.handler === SIG_DFL && ignoredAtStart.has(signal);
    action.writeBigUInt64LE(ignored ? SIG_IGN : a.handler, 0);
    action.writeBigUInt64LE(a.flags, 8);
    action.writeBigUInt64LE(a.restorer, 16);
    action.writeBigUInt64LE(a.mask, 24);
    remote.sigaction(signal, action);
  });
}

/**
 * The open files: 0, 1 and 2 stay the restorer's (the stub inherited them). Every other
 * descriptor is closed, then each recorded one made again at its number: regular files (and
 * directories) reopened by path, at their offset, with their flags, a dup of a lower one dup'd
 * from it again (SHARED_FD); pipes and socket pairs with
 * both ends in the process, eventfds, epoll instances, timerfds and signalfds created anew
 * (./eventfds.ts), the read end of a pipe another process wrote as one whose writer has gone,
 * listening, bound, connected and unbound sockets (./sockets.ts: a stream connection comes back
 * closed by its peer), the process's controlling terminal as the restorer's (/dev/tty), the epoll
 * registrations last; what cannot be made again (other terminals, the write end of a pipe another
 * process reads, a file gone) becomes /dev/null, with one warning line each.
 */
export function restoreFds(remote: RemoteTask, fds: readonly ExtensionFd[], owner: ThreadIdentity | undefined, mapped: readonly MappedObject[], warn: (line: string) => void): void {
  remote.closeRange(3, 0xffff_ffff);
  const pipes = pipesWithBothEnds(fds);
  const socketPairs = socketPairsWithBothEnds(fds);
  const numbers = numbersByTarget(fds);
  /** The descriptors made again as what they were (not /dev/null). */
  const restored = new Set<number>();
  const lostFiles = new LostFiles(remote, fds, mapped);
  const reopenLost = (fd: ExtensionFd) => {
    placeAt(remote, lostFiles.open(fd, reopenFlags(fd), warn), fd);
    remote.lseek(fd.fd, fd.offset, SEEK_SET);
    restored.add(fd.fd);
  };
  restoreBoundSockets(remote, [...numbers.values()].filter((same) => same[0].boundSocket), owner, restored, warn);
  for (const fd of fds) {
    // A dup of a lower descriptor (`2>&1`) is a dup of it again: one open file, one offset.
    if (fd.sharesWith !== undefined && restored.has(fd.sharesWith)) {
      try {
        remote.dup3(fd.sharesWith, fd.fd, fd.flags & O_CLOEXEC);
        restored.add(fd.fd);
      } catch (err) {
        replaceAfterFailure(remote, fd, err, warn);
      }
      continue;
    }
    // A standard stream that was a terminal, pipe or socket stays the restorer's, as for a
    // program started from its shell. One that was a file or another device was redirected
    // (`> log`, `< /dev/null`): it is restored as any descriptor, on /dev/null where its file is
    // gone, never on the restorer's, where the output went nowhere near before.
    if (staysTheRestorers(fd)) continue;
    if (restored.has(fd.fd)) continue;
    try {
      const pipe = pipes.get(fd.target);
      if (pipe) {
        restorePipe(remote, pipe, warn);
        for (const end of [...pipe.read, ...pipe.write]) restored.add(end.fd);
        continue;
      }
      const pair = socketPairs.get(fd.target);
      if (pair) {
        restoreSocketPair(remote, pair, warn);
        for (const end of pair.ends.flat()) restored.add(end.fd);
        continue;
      }
      if (isEventObject(fd)) {
        restoreEventObject(remote, fd, warn);
        restored.add(fd.fd);
        continue;
      }
      const makeAgain = fd.kind === 'pipe' && fd.target.startsWith('pipe:[') && !isPipeWriteEnd(fd) ? restoreWriterlessPipe
        : fd.netlink ? restoreNetlinkSocket : fd.connectedSocket ? restoreConnectedSocket : fd.unboundSocket ? restoreUnboundSocket : null;
      if (makeAgain) {
        // Made once, at every number it had above the standard streams.
        const same = numbers.get(fd.target)!;
        makeAgain(remote, same, warn);
        for (const number of same) restored.add(number.fd);
        continue;
      }
      if (lostFiles.has(fd)) {
        reopenLost(fd);
        continue;
      }
      // The process's controlling terminal (kept for its keyboard, as `less` keeps /dev/tty) is
      // the restorer's now: the stub's /dev/tty.
      const controlling = fd.kind === 'tty' && (fd.target === '/dev/tty' || fd.terminal?.controlling === true);
      const reason = controlling ? null : reopenProblem(fd);
      if (reason === null && reopen(remote, fd, warn, controlling ? '/dev/tty' : fd.target)) {
        restored.add(fd.fd);
        continue;
      }
      if (reason !== null) warn(`fd ${fd.fd} (${fd.target}): ${reason}: replaced by /dev/null`);
      placeDevNull(remote, fd);
    } catch (err) {
      replaceAfterFailure(remote, fd, err, warn);
    }
  }
  lostFiles.close();
  registerEpollTargets(remote, fds, restored, warn);
  takeLocks(remote, fds, restored, warn);
}

export const DEV_NULL = '/dev/null';

/** A standard stream that was a terminal, pipe or socket: the restorer's is given in its place. */
export function staysTheRestorers(fd: ExtensionFd): boolean {
  return fd.fd <= 2 && ((fd.kind === 'pipe' && !isNamedFifo(fd)) || fd.kind === 'socket' || fd.kind === 'tty');
}

/** /dev/null at fd's number, open for what fd was. */
function placeDevNull(remote: RemoteTask, fd: ExtensionFd): void {
  const accessMode = (fd.flags & O_ACCMODE) === O_ACCMODE ? O_RDWR : fd.flags & O_ACCMODE;
  placeAt(remote, remote.openat(DEV_NULL, accessMode | (fd.flags & O_CLOEXEC)), fd);
}

/**
 * A descriptor whose making failed: /dev/null in its place, as for what cannot be made again,
 * or, where nothing can be put at its number (beyond our RLIMIT_NOFILE, say), left closed. One warning.
 */
function replaceAfterFailure(remote: RemoteTask, fd: ExtensionFd, err: unknown, warn: (line: string) => void): void {
  if (!(err instanceof NativeError)) throw err;
  try {
    placeDevNull(remote, fd);
  } catch (again) {
    if (!(again instanceof NativeError)) throw again;
    warn(`fd ${fd.fd} (${fd.target}): cannot be restored (${err.code}): left closed`);
    return;
  }
  warn(`fd ${fd.fd} (${fd.target}): cannot be restored (${err.code}): replaced by /dev/null`);
}

/** The descriptors above the standard streams by target, ascending: an open file or socket at each of its numbers. */
function numbersByTarget(fds: readonly ExtensionFd[]): Map<string, ExtensionFd[]> {
  const byTarget = new Map<string, ExtensionFd[]>();
  for (const fd of fds) {
    if (fd.fd <= 2) continue;
    const same = byTarget.get(fd.target);
    if (same) same.push(fd);
    else byTarget.set(fd.target, [fd]);
  }
  return byTarget;
}

/**
 * The listening and bound sockets, each at all its numbers, all made under one switch to the
 * dumped user's effective ids (asDumpedUser).
 */
function restoreBoundSockets(remote: RemoteTask, sockets: readonly (readonly ExtensionFd[])[], owner: ThreadIdentity | undefined,
  restored: Set<number>, warn: (line: string) => void): void {
  if (sockets.length === 0) return;
  asDumpedUser(remote, owner, () => {
    for (const numbers of sockets) {
      try {
        restoreBoundSocket(remote, numbers, warn);
        for (const number of numbers) restored.add(number.fd);
      } catch (err) {
        replaceAfterFailure(remote, numbers[0], err, warn);
      }
    }
  });
}

/**
 * Opens a recorded file again at its number and offset; false (with a warning: /dev/null goes
 * there instead) if it cannot be.
 */
function reopen(remote: RemoteTask, fd: ExtensionFd, warn: (line: string) => void, path = fd.target): boolean {
  // A FIFO's open waits for the other end unless non-blocking (for writing it then fails with
  // ENXIO while nobody reads): the stub must not wait, and the flag is the process's again after.
  const fifo = isNamedFifo(fd);
  let opened: number;
  try {
    opened = remote.openat(path, reopenFlags(fd) | (fifo ? O_NONBLOCK : 0));
  } catch (err) {
    if (!(err instanceof NativeError)) throw err;
    const why = fifo && err.code === 'ENXIO' ? 'nobody reads the FIFO now' : err.code;
    warn(`fd ${fd.fd} (${fd.target}): cannot be reopened${path === fd.target ? '' : ` as ${path}`} (${why}): replaced by /dev/null`);
    return false;
  }
  placeAt(remote, opened, fd);
  if (fifo && (fd.flags & O_NONBLOCK) === 0) remote.fcntl(fd.fd, F_SETFL, fd.flags & ~O_NONBLOCK);
  if (fd.kind === 'file') {
    remote.lseek(fd.fd, fd.offset, SEEK_SET);
    const change = fileChange(fd);
    // An O_APPEND descriptor writes at the end whatever its offset.
    const where = fd.flags & O_APPEND ? 'appending at its end' : `at offset ${fd.offset}`;
    if (change) warn(`fd ${fd.fd} (${fd.target}): ${change}: reopened as it is now, ${where}`);
  }
  return true;
}

/** How the file at fd's path differs from the one the process had open, or null (as for a mapped file). */
function fileChange(fd: ExtensionFd): string | null {
  if (!fd.fileState) return null;
  try {
    return changeSinceDump(statSync(fd.target, { bigint: true }), fd.fileState);
  } catch {
    return null; // just opened: only a file removed since can fail here, and it is open all the same
  }
}

/** A FIFO the process opened by its path (mkfifo): opened again by it, unlike a pipe. */
function isNamedFifo(fd: ExtensionFd): boolean {
  return fd.kind === 'pipe' && fd.target.startsWith('/');
}

/** Why a recorded descriptor cannot be opened again by its path; null when it can. */
function reopenProblem(fd: ExtensionFd): string | null {
  if (fd.kind === 'pipe' && fd.target.startsWith('pipe:[')) return 'the write end of a pipe another process reads cannot be restored';
  if (isNamedFifo(fd)) {
    try {
      return statSync(fd.target).isFIFO() ? null : 'its path names another kind of file now';
    } catch {
      return 'its FIFO no longer exists';
    }
  }
  if (fd.kind === 'pipe' || fd.kind === 'socket' || fd.kind === 'tty') return `a ${fd.kind} cannot be restored`;
  if (fd.target === SECRET_MEMORY_PATH) return 'a descriptor of memfd_secret memory, whose bytes no other process may read (the memory it mapped comes back as new secret memory)';
  if (isDeleted(fd.target)) return 'no path leads to its file any more, and the image does not carry its bytes (over 16 MiB, or past 64 MiB in all)';
  if (!fd.target.startsWith('/')) return 'its file cannot be opened again';
  try {
    const st = statSync(fd.target);
    if (fd.kind === 'file' && st.isFile()) return null;
    // Devices that are not terminals (/dev/null, /dev/urandom) and directories open by path too.
    if (fd.kind === 'other' && (st.isCharacterDevice() || (st.isDirectory() && (fd.flags & O_DIRECTORY) !== 0))) return null;
  } catch {
    return 'its file no longer exists';
  }
  return 'its path names another kind of file now';
}

/** Moves a descriptor the stub just opened to the recorded number. */
function placeAt(remote: RemoteTask, opened: number, fd: ExtensionFd): void {
  if (opened === fd.fd) return;
  try {
    remote.dup3(opened, fd.fd, fd.flags & O_CLOEXEC);
  } finally {
    remote.close(opened);
  }
}
