// The stub: an ordinary child process emptied out so that the dumped task can be built in its
// place. We spawn it, seize it, give it a small control area (a `syscall` instruction and room
// for arguments) at an address the image does not use, cut every tie it has to its own program
// (rseq area, robust futex list, clear-on-exit tid), and unmap everything but the control area.

import { readFileSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { NativeError } from '../ptrace/errors.js';
import { injectSyscall } from '../ptrace/inject.js';
import { __WALL, ptrace, PTRACE_INTERRUPT, PTRACE_SEIZE, waitpid } from '../ptrace/libc.js';
import { readMemory } from '../ptrace/memory.js';
import { REMOTE_TRACE_OPTIONS, RemoteTask, SYSCALL_CODE, writeProcessMemory, type RemoteChild } from '../ptrace/remote.js';
import { killAndReap, spawnStub } from '../ptrace/spawn.js';
import { PAGE_SIZE } from '../model.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE, MAP_ANONYMOUS, MAP_PRIVATE } from '../format.js';
import { RestoreError } from './errors.js';
import type { TimeSpec } from '../extension-model.js';
import { hostClocks, NSEC_PER_SEC, timensOffsetsText } from '../proc/timens.js';
import { PR_SET_NAME, SYS } from '../ptrace/syscalls.js';

/** Code page plus two pages of arguments: a path of PATH_MAX bytes fits. */
export const CONTROL_SIZE = 3 * PAGE_SIZE;
/** Where the arguments start in the control area, past the code. */
const SCRATCH_OFFSET = 64;
/** The highest address a 4-level page table gives user space (TASK_SIZE_MAX). */
export const USER_SPACE_END = 0x7ffffffff000;
/** Lowest address tried for the control area. */
const CONTROL_FLOOR = 0x100000;

const MAP_FIXED_NOREPLACE = 0x100000;
const PR_SET_PDEATHSIG = 1;
const { SIGKILL } = constants.signals;
const CLONE_PARENT = 0x8000;
const CLONE_NEWTIME = 0x80;

/** One of the kernel's special mappings as the stub shows them: [vvar], [vvar_vclock], [vdso]. */
export interface SpecialMapping {
  name: string;
  start: number;
  end: number;
}

/** The vDSO of this kernel: its mappings in address order, and the [vdso] text. */
export interface KernelVdso {
  mappings: SpecialMapping[];
  text: Buffer;
}

export interface Stub {
  pid: number;
  /** The leader, ready to run system calls. */
  remote: RemoteTask;
  control: number;
  vdso: KernelVdso | null;
}

export interface StubOptions {
  stdinFromDevNull: boolean;
  /** Address ranges the image maps, ascending: the control area must avoid them. */
  occupied: readonly { start: number; end: number }[];
  /** Its name (comm) while it is being restored. */
  name: string;
}

/**
 * Spawns and prepares a stub. On any failure the stub is killed before the error is thrown:
 * nothing half-made is left running.
 */
export function createStub(options: StubOptions): Stub {
  const pid = spawnStub({ stdinFromDevNull: options.stdinFromDevNull });
  try {
    ptrace(PTRACE_SEIZE, pid, 0, REMOTE_TRACE_OPTIONS);
    ptrace(PTRACE_INTERRUPT, pid);
    awaitStop(pid);
    const vdso = readKernelVdso(pid);
    const control = mapControlArea(pid, options.occupied);
    const remote = controlled(pid, control);
    remote.prctlString(PR_SET_NAME, options.name);
    // Should we die before the restore ends, the half-made process dies with us.
    remote.prctl(PR_SET_PDEATHSIG, SIGKILL);
    remote.unregisterRseq();
    remote.clearRobustList();
    remote.setTidAddress(0);
    unmapAllBut(remote, control);
    return { pid, remote, control, vdso };
  } catch (err) {
    killAndReap([pid]);
    throw err;
  }
}

function awaitStop(pid: number): void {
  const stop = waitpid(pid, __WALL);
  if (stop.kind !== 'stopped') throw new RestoreError(`the stub (pid ${pid}) ended before it could be taken over`);
}

function controlled(pid: number, control: number): RemoteTask {
  RemoteTask.traceOptions(pid);
  return new RemoteTask(pid, control, control + SCRATCH_OFFSET, CONTROL_SIZE - SCRATCH_OFFSET);
}

/** [vvar], [vvar_vclock] and [vdso] of the stub: this kernel's layout of them, and the vDSO code. */
function readKernelVdso(pid: number): KernelVdso | null {
  const mappings: SpecialMapping[] = [];
  for (const line of readFileSync(`/proc/${pid}/maps`, 'latin1').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s+(\[vvar\]|\[vvar_vclock\]|\[vdso\])$/.exec(line);
    if (m) mappings.push({ name: m[3], start: parseInt(m[1], 16), end: parseInt(m[2], 16) });
  }
  const text = mappings.find((m) => m.name === '[vdso]');
  if (!text) return null;
  return { mappings, text: readMemory(pid, text.start, text.end - text.start) };
}

/** Gaps between the occupied ranges large enough for the control area, lowest first. */
function* freeCandidates(occupied: readonly { start: number; end: number }[]): Generator<number> {
  let from = CONTROL_FLOOR;
  for (const range of [...occupied, { start: USER_SPACE_END, end: USER_SPACE_END }]) {
    if (range.start - from >= CONTROL_SIZE) yield from;
    from = Math.max(from, range.end);
  }
}

/**
 * Maps the control area where neither the image nor the stub has anything, through a syscall
 * injected at the stub's own vDSO, and writes the syscall instruction into it.
 */
function mapControlArea(pid: number, occupied: readonly { start: number; end: number }[]): number {
  const prot = PROT_READ | PROT_WRITE | PROT_EXEC;
  const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
  for (const address of freeCandidates(occupied)) {
    const result = BigInt.asIntN(64, injectSyscall(pid, SYS.mmap, [address, CONTROL_SIZE, prot, flags, -1, 0]));
    if (result === BigInt(-constants.errno.EEXIST)) continue; // the stub has something there
    if (result < 0n) throw new NativeError(Number(-result), `mmap of the control area in pid ${pid}`, 'failed');
    writeProcessMemory(pid, address, SYSCALL_CODE);
    return address;
  }
  throw new RestoreError('the image leaves no room for the restorer\'s control area');
}

/** What a restored process can have only as a new process. */
export interface StubMove {
  /** The dumped pid, and whether the restore fails without it. */
  pid?: { wanted: number; required: boolean };
  /** The dumped process's clocks: in a time namespace of its own they go on from there. */
  clocks?: { monotonic: TimeSpec; boottime: TimeSpec };
}

/**
 * Replaces the stub by a copy of itself where the restored process needs what only a new process
 * gets: the dumped pid (clone3's set_tid, which the kernel refuses for a pid in use, and to anyone
 * without CAP_SYS_ADMIN), or a time namespace in which CLOCK_MONOTONIC and CLOCK_BOOTTIME go on
 * from the dump's values (the stub unshares one for its children and we set its offsets, which
 * needs CAP_SYS_ADMIN too): a program that moves to another machine, whose clocks started at
 * another boot, sees no jump in them. The copy is a clone3 run in the stub, with CLONE_PARENT so
 * that it is our child too, sharing the stub's pages copy-on-write until the old stub is killed.
 * What cannot be had is a warning, unless the pid is required. Null: the stub stays as it is.
 */
export function moveStub(stub: Stub, move: StubMove, warn: (line: string) => void): { stub: Stub; hasPid: boolean } | null {
  const inTimeNamespace = move.clocks !== undefined && enterTimeNamespace(stub, move.clocks, warn);
  const withPid = move.pid && cloneWithPid(stub, move.pid.wanted, move.pid.required);
  let child = typeof withPid === 'object' ? withPid : undefined;
  const hasPid = child !== undefined;
  // With CLONE_PARENT the copy takes the stub's exit signal (SIGCHLD): clone3 wants 0 here.
  if (!child && inTimeNamespace) child = stub.remote.clone3({ flags: CLONE_PARENT, exitSignal: 0 });
  if (move.pid && withPid === 'taken') {
    warn(`pid ${move.pid.wanted} is in use by another process: the process is restored with pid ${child?.tid ?? stub.pid} (a program that remembers its pid, as Python's asyncio does, may fail)`);
  }
  if (!child) return null;
  stub.remote.dispose();
  killAndReap([stub.pid]);
  try {
    const remote = controlled(child.tid, stub.control);
    // A fork does not inherit the death signal.
    remote.prctl(PR_SET_PDEATHSIG, SIGKILL);
    return { stub: { ...stub, pid: child.tid, remote }, hasPid };
  } catch (err) {
    killAndReap([child.tid]);
    throw err;
  }
}

/** The copy of the stub with the wanted pid, unless the pid is taken or (for anyone but root) not ours to choose and not required. */
function cloneWithPid(stub: Stub, wanted: number, required: boolean): RemoteChild | 'taken' | 'not ours' {
  try {
    return stub.remote.clone3({ flags: CLONE_PARENT, exitSignal: 0, setTid: wanted });
  } catch (err) {
    const taken = err instanceof NativeError && err.errno === constants.errno.EEXIST;
    if (!taken && !(err instanceof NativeError && err.errno === constants.errno.EPERM)) throw err;
    if (!required) return taken ? 'taken' : 'not ours';
    throw new RestoreError(taken ? `pid ${wanted} is in use by another process: --same-pid cannot restore it`
      : `choosing pid ${wanted} needs CAP_SYS_ADMIN (run as root): ${err.message}`);
  }
}

/**
 * Makes the stub's children start in a new time namespace whose clocks read the dumped ones now;
 * false, with a warning saying how far the clocks jump, where the kernel refuses.
 */
function enterTimeNamespace(stub: Stub, clocks: { monotonic: TimeSpec; boottime: TimeSpec }, warn: (line: string) => void): boolean {
  const nanoseconds = (t: TimeSpec) => BigInt(t.sec) * NSEC_PER_SEC + BigInt(t.nsec);
  try {
    stub.remote.unshare(CLONE_NEWTIME);
    const host = hostClocks();
    writeFileSync(`/proc/${stub.pid}/timens_offsets`, timensOffsetsText({
      monotonic: nanoseconds(clocks.monotonic) - host.monotonic, boottime: nanoseconds(clocks.boottime) - host.boottime,
    }));
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!(err instanceof NativeError) && code === undefined) throw err;
    const jump = Number(hostClocks().monotonic - nanoseconds(clocks.monotonic)) / 1e9;
    const why = code === 'EPERM' ? 'which needs CAP_SYS_ADMIN' : `which the kernel refuses (${code})`;
    warn(`CLOCK_MONOTONIC jumps by ${jump.toFixed(1)} s since the dump: keeping it needs a time namespace, ${why}`);
    return false;
  }
}

/** The restore is done: the process no longer dies with us (PR_SET_PDEATHSIG back to none). */
export function letLive(stub: Stub): void {
  stub.remote.prctl(PR_SET_PDEATHSIG, 0);
}

/** Unmaps the whole user address space but the control area. */
function unmapAllBut(remote: RemoteTask, control: number): void {
  remote.munmap(0, control);
  remote.munmap(control + CONTROL_SIZE, USER_SPACE_END - control - CONTROL_SIZE);
}
