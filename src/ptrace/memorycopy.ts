// A copy-on-write copy of a frozen process's memory, so that the process can run on while its
// snapshot is read (mount option --live). The kernel's fork keeps every private page of the copy as
// it was at the fork for as long as the copy lives, at the cost of a page copy only where the
// process writes; the fork is the process's own, run by an injected call.
//
// The copy must be nobody's child that would notice it: a child of the process would be a zombie
// in it once killed (a clone child without an exit signal, which only a __WALL wait reaps). So the
// process first clones a helper that shares its memory and descriptor table (CLONE_VM|CLONE_FILES:
// no page table is copied for it), the helper forks the copy, the helper is killed and the frozen
// process reaps it by an injected wait4. The copy, an orphan, belongs to the reaper of orphans
// (init, a subreaper) from then on, which reaps it when we kill it; if that is the process itself
// (a subreaper, a namespace's init), the copy is ended too and none is made. Its descriptor table, copied
// from the process's, is emptied at once (close_range), so the copy holds no socket, pipe or lock
// open behind the process's back, and it is named imgfs:<pid>, its command line too when the
// caller has kept the snapshot's bytes there (ps -f, pgrep -f and pkill -f read the copy's
// memory for it). Helper and copy never run code of the process: each is disarmed
// (pointed at exit) the moment it exists, so that if imgfs dies the kernel's detach ends them.

import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../format.js';
import { PAGE_SIZE } from '../model.js';
import { readStat } from '../proc/stat.js';
import { statusNumber } from '../proc/status.js';
import { nativeError, PTRACE_O_TRACECLONE, WNOHANG, __WALL } from './libc.js';
import { seizeOptions } from './freeze.js';
import { disarm, injectClone, injectSyscall, injectSyscalls } from './inject.js';
import { writeMemoryForced } from './memory.js';
import { killAndReap } from './spawn.js';
import { CLONE_FILES, CLONE_VM, PR_SET_NAME, SYS } from './syscalls.js';

const ALL_FDS = 0xffffffff;

export interface MemoryCopy {
  /** The copy's pid and start time, to read its memory (a pid can be another process's later). */
  pid: number;
  startTime: number;
  /** Kills the copy. Idempotent. */
  release(): void;
}

/**
 * Makes the copy of the memory of the process whose thread `tid` is held by freezeThreadGroup. The
 * process stays frozen; it may run on as soon as this returns. commandLine: the process's argument
 * area, and the environment after it, [start, end), overwritten in the copy with its name (the
 * caller keeps the snapshot's bytes there); null: left as it is. Throws (leaving nothing behind but, should the final reap fail, one
 * zombie helper in the process) when the kernel refuses the fork (a pids limit, memory
 * accounting) or a call fails.
 */
export function copyMemory(tid: number, commandLine: { start: number; end: number } | null): MemoryCopy {
  const keep = seizeOptions(tid);
  const helper = cloneTraced(tid, CLONE_VM | CLONE_FILES, keep, 'clone of a helper');
  let helperEnded = false;
  let copy: { rax: bigint; child: number } | null = null;
  let startTime: number;
  try {
    copy = cloneTraced(helper.child, 0, keep, 'fork of the copy');
    const inCopy = callIn(copy.child, keep);
    inCopy(SYS.close_range, [0, ALL_FDS, 0], 'close_range');
    const name = `imgfs:${tid}`;
    nameCopy(copy.child, inCopy, name);
    if (commandLine) writeMemoryForced(copy.child, commandLine.start, commandLineOf(name, commandLine.end - commandLine.start));
    endChild(tid, helper);
    helperEnded = true; // its pid may be another process's from now on
    // The orphan went to the process itself: it is a subreaper, or its pid namespace's init, and
    // might never reap a child it did not make.
    if (readStat(copy.child).ppid === statusNumber(readFileSync(`/proc/${tid}/status`, 'latin1'), 'Tgid')) {
      endChild(tid, copy);
      copy = null;
      throw nativeError(constants.errno.EBUSY, `a copy of its memory`, 'it reaps orphans (a subreaper, or its namespace\'s init): the copy would be its child');
    }
    startTime = readStat(copy.child).startTime;
  } catch (err) {
    if (copy !== null) killAndReap([copy.child]);
    if (!helperEnded) {
      try {
        endChild(tid, helper);
      } catch {
        // Beyond reach: the error that matters is err.
      }
    }
    throw err;
  }
  const { child: pid } = copy;
  let released = false;
  return {
    pid,
    startTime,
    release() {
      if (!released) killAndReap([pid]);
      released = true;
    },
  };
}

type RemoteCall = (nr: number, args: (number | bigint)[], what: string) => bigint;

/** A system call run by the stopped task tid, which throws on failure. */
function callIn(tid: number, keep: number): RemoteCall {
  return (nr, args, what) => {
    const result = injectSyscalls([{ tid, nr, args, traceOptions: keep }])[0];
    if (result < 0n) throw nativeError(Number(-result), `${what} in ${tid}`);
    return result;
  };
}

/**
 * Names the copy (its comm, which ps and pgrep show), so that neither people nor tools that find
 * processes by name take it for a second instance of the process. The name is staged in a page
 * mapped for the moment, never in the snapshot's memory.
 */
function nameCopy(copy: number, call: RemoteCall, name: string): void {
  const page = call(SYS.mmap, [0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0], 'mmap');
  try {
    writeMemoryForced(copy, Number(page), Buffer.from(`${name}\0`, 'latin1'));
    call(SYS.prctl, [PR_SET_NAME, page, 0, 0, 0], 'prctl(PR_SET_NAME)');
  } finally {
    call(SYS.munmap, [page, PAGE_SIZE], 'munmap');
  }
}

/** An argument area of `length` bytes holding name alone, NUL-padded (cut short if it must be). */
function commandLineOf(name: string, length: number): Buffer {
  const area = Buffer.alloc(length);
  area.write(name, 0, Math.max(0, length - 1), 'latin1');
  return area;
}

/** Kills a child of the process (tid's, which is frozen) and has the process reap it. */
function endChild(tid: number, child: { rax: bigint; child: number }): void {
  killAndReap([child.child]);
  const reaped = injectSyscall(tid, SYS.wait4, [child.rax, 0, WNOHANG | __WALL, 0]);
  if (reaped !== child.rax) throw nativeError(constants.errno.ECHILD, `wait4 in pid ${tid}`, `its child ${child.child} was not reaped (${reaped})`);
}

/** clone(flags) with no exit signal, run by tid, the child traced by us and disarmed at once. */
function cloneTraced(tid: number, flags: number, keep: number, what: string): { rax: bigint; child: number } {
  const { rax, child } = injectClone(tid, SYS.clone, [flags, 0, 0, 0, 0], PTRACE_O_TRACECLONE | keep);
  if (rax < 0n || child === null) throw nativeError(rax < 0n ? Number(-rax) : constants.errno.ECHILD, `${what} in pid ${tid}`);
  disarm(child);
  return { rax, child };
}
