// The stub: an ordinary child process emptied out so that the dumped task can be built in its
// place. We spawn it, seize it, give it a small control area (a `syscall` instruction and room
// for arguments) at an address the image does not use, cut every tie it has to its own program
// (rseq area, robust futex list, clear-on-exit tid), and unmap everything but the control area.

import { readFileSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { NativeError } from '../ptrace/errors.js';
import { injectSyscall } from '../ptrace/inject.js';
import { __WALL, ptrace, PTRACE_DETACH, PTRACE_INTERRUPT, PTRACE_SEIZE, waitpid } from '../ptrace/libc.js';
import { getRegs, setRegs } from '../ptrace/regs.js';
import { readMemory, writeMemoryForced } from '../ptrace/memory.js';
import { REMOTE_TRACE_OPTIONS, RemoteTask, SYSCALL_CODE, type RemoteChild } from '../ptrace/remote.js';
import { killAndReap, spawnStub } from '../ptrace/spawn.js';
import { PAGE_SIZE } from '../model.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE, MAP_ANONYMOUS, MAP_PRIVATE } from '../format.js';
import { RestoreError } from './errors.js';
import { SIG_IGN, type TimeSpec } from '../extension-model.js';
import { readStat } from '../proc/stat.js';
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
const { SIGCHLD, SIGKILL } = constants.signals;
const CLONE_PARENT = 0x8000;
const CLONE_NEWTIME = 0x80;
const CLONE_NEWPID = 0x20000000;

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
  /** The init of the pid namespace the stub was moved into, if it was (see moveStub). */
  init?: RemoteTask;
}

/**
 * The processes a failed restore must kill, for killAndReap: the init of the stub's pid namespace
 * first (its death kills everything in there), then the stub.
 */
export function stubTids(stub: Stub): number[] {
  return stub.init ? [stub.init.tid, stub.pid] : [stub.pid];
}

export interface StubOptions {
  /** Its standard input instead of ours; null: ours. */
  stdin: string | null;
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
  const pid = spawnStub({ stdin: options.stdin });
  try {
    ptrace(PTRACE_SEIZE, pid, 0, REMOTE_TRACE_OPTIONS);
    ptrace(PTRACE_INTERRUPT, pid);
    awaitStop(pid);
    const vdso = readKernelVdso(pid);
    const control = mapControlArea(pid, options.occupied);
    const remote = controlled(pid, control);
    remote.prctlString(PR_SET_NAME, options.name);
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
    writeMemoryForced(pid, address, SYSCALL_CODE);
    return address;
  }
  throw new RestoreError('the image leaves no room for the restorer\'s control area');
}

/** What a restored process can have only as a new process. */
export interface StubMove {
  /**
   * The dumped pid, whether the restore fails without it, and whether, where it is in use, the
   * process gets it in a new pid namespace.
   */
  pid?: { wanted: number; required: boolean; namespace: boolean };
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
 * A pid in use can be had in a new pid namespace instead (cloneInPidNamespace), where asked.
 * What cannot be had is a warning, unless the pid is required. Null: the stub stays as it is.
 */
export function moveStub(stub: Stub, move: StubMove, warn: (line: string) => void): { stub: Stub; hasPid: boolean; inNamespace: boolean } | null {
  const inTimeNamespace = move.clocks !== undefined && enterTimeNamespace(stub, move.clocks, warn);
  const pid = move.pid;
  const withPid = pid && cloneWithPid(stub, pid);
  const inNamespace = pid?.namespace === true && withPid === 'taken' ? cloneInPidNamespace(stub, pid.wanted, pid.required) : undefined;
  let child = inNamespace?.child ?? (typeof withPid === 'object' ? withPid : undefined);
  const hasPid = child !== undefined;
  // With CLONE_PARENT the copy takes the stub's exit signal (SIGCHLD): clone3 wants 0 here.
  if (!child && inTimeNamespace) child = stub.remote.clone3({ flags: CLONE_PARENT, exitSignal: 0 });
  if (pid && withPid === 'taken') {
    warn(inNamespace
      ? `${pidInUse(pid.wanted)}: the process keeps it in a PID namespace of its own (pid ${child!.tid} outside it)`
      : `${pidInUse(pid.wanted)}: the process is restored with pid ${child?.tid ?? stub.pid} (a program that remembers its pid, as Python's asyncio does, may fail; --pid-ns keeps it)`);
  }
  if (pid?.namespace && withPid === 'not ours') {
    warn(`--pid-ns: choosing pid ${pid.wanted} needs CAP_SYS_ADMIN: the process is restored with pid ${child?.tid ?? stub.pid}`);
  }
  if (!child) return null;
  stub.remote.dispose();
  killAndReap([stub.pid]);
  const made = [...(inNamespace?.init ? [inNamespace.init.tid] : []), child.tid];
  try {
    const remote = controlled(child.tid, stub.control);
    // A fork does not inherit the death signal.
    remote.prctl(PR_SET_PDEATHSIG, SIGKILL);
    const init = inNamespace?.init && namespaceInit(inNamespace.init.tid, stub.control, pid!.wanted);
    return { stub: { ...stub, pid: child.tid, remote, ...(init ? { init } : {}) }, hasPid, inNamespace: inNamespace !== undefined };
  } catch (err) {
    killAndReap(made);
    throw err;
  }
}

/**
 * Copies of the stub in a new pid namespace, where the wanted pid is free whatever holds it here:
 * the stub unshares one for its children, the first of which is the namespace's init (pid 1, which
 * the kernel wants before any other pid there), the second the copy with the wanted pid. Both are
 * our children (CLONE_PARENT), traced and stopped. Undefined, with the pid not required, where the
 * kernel refuses (no CAP_SYS_ADMIN).
 */
function cloneInPidNamespace(stub: Stub, wanted: number, required: boolean): { init?: RemoteChild; child: RemoteChild } | undefined {
  const copy = (setTid?: number) => stub.remote.clone3({ flags: CLONE_PARENT, exitSignal: 0, ...(setTid === undefined ? {} : { setTid }) });
  try {
    stub.remote.unshare(CLONE_NEWPID);
  } catch (err) {
    if (!(err instanceof NativeError) || required) throw err;
    return undefined;
  }
  if (wanted === 1) return { child: copy() };
  const init = copy();
  try {
    return { init, child: copy(wanted) };
  } catch (err) {
    killAndReap([init.tid]);
    throw err;
  }
}

/** Where the init's code goes in its copy of the control area: past the syscall instruction. */
const INIT_CODE_OFFSET = SCRATCH_OFFSET;

/**
 * Makes the namespace's init what the restored process needs of it: none of our descriptors, the
 * kernel reaping what is reparented to it (SIGCHLD ignored), a pidfd of the restored process
 * (pid wanted in there), and, in its copy of the control area, code that waits for that pidfd to
 * poll readable and exits: the namespace ends with the restored process (what it left running
 * there is killed with it), not held by an init for nothing. It dies with us until letLive starts it.
 */
function namespaceInit(tid: number, control: number, wanted: number): RemoteTask {
  const init = controlled(tid, control);
  init.prctl(PR_SET_PDEATHSIG, SIGKILL);
  init.prctlString(PR_SET_NAME, 'imgfs-pidns');
  init.closeRange(0, 0xffff_ffff);
  const ignore = Buffer.alloc(32);
  ignore.writeBigUInt64LE(SIG_IGN, 0);
  init.sigaction(SIGCHLD, ignore);
  writeMemoryForced(tid, control + INIT_CODE_OFFSET, waitAndExitCode(init.pidfdOpen(wanted)));
  return init;
}

/**
 * x86_64 code: `do r = poll(&{pidfd, POLLIN}, 1, -1); while (r != 1); exit_group(0);`, with the
 * pollfd after the code.
 */
function waitAndExitCode(pidfd: number): Buffer {
  const code = Buffer.from([
    0xb8, 0x07, 0x00, 0x00, 0x00, //       0: mov eax, SYS_poll
    0x48, 0x8d, 0x3d, 0x1c, 0x00, 0x00, 0x00, // 5: lea rdi, [rip + 28]: the pollfd at 40
    0xbe, 0x01, 0x00, 0x00, 0x00, //      12: mov esi, 1
    0xba, 0xff, 0xff, 0xff, 0xff, //      17: mov edx, -1
    0x0f, 0x05, //                        22: syscall
    0x48, 0x83, 0xf8, 0x01, //            24: cmp rax, 1
    0x75, 0xe2, //                        28: jne 0
    0xb8, 0xe7, 0x00, 0x00, 0x00, //      30: mov eax, SYS_exit_group
    0x31, 0xff, //                        35: xor edi, edi
    0x0f, 0x05, //                        37: syscall
    0xcc, //                              39: int3
    0, 0, 0, 0, 0x01, 0x00, 0x00, 0x00, // 40: struct pollfd { fd, events POLLIN, revents }
  ]);
  code.writeInt32LE(pidfd, 40);
  return code;
}

/**
 * Who holds a pid: often the dumped process itself, killed but not yet reaped by its parent (a
 * restore tried again once it is gets the pid).
 */
function pidInUse(pid: number): string {
  try {
    const holder = readStat(pid);
    if (holder.state === 'Z') {
      const parent = readStat(holder.ppid);
      return `pid ${pid} is held by a process that has exited (${holder.comm}) and that its parent, pid ${holder.ppid} (${parent.comm}), has not reaped yet`;
    }
  } catch {
    // Reaped meanwhile, or a parent gone since: say what the kernel said.
  }
  return `pid ${pid} is in use by another process`;
}

/**
 * The copy of the stub with the wanted pid, unless the pid is taken (and not required, or to be had
 * in a pid namespace) or, for anyone but root, not ours to choose (and not required).
 */
function cloneWithPid(stub: Stub, { wanted, required, namespace }: NonNullable<StubMove['pid']>): RemoteChild | 'taken' | 'not ours' {
  try {
    return stub.remote.clone3({ flags: CLONE_PARENT, exitSignal: 0, setTid: wanted });
  } catch (err) {
    const taken = err instanceof NativeError && err.errno === constants.errno.EEXIST;
    if (!taken && !(err instanceof NativeError && err.errno === constants.errno.EPERM)) throw err;
    if (!required || (taken && namespace)) return taken ? 'taken' : 'not ours';
    throw new RestoreError(taken ? `${pidInUse(wanted)}: --same-pid cannot restore it`
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

/**
 * The restore is done: the process no longer dies with us (PR_SET_PDEATHSIG back to none), nor
 * does the init of its pid namespace, which starts waiting for it.
 */
export function letLive(stub: Stub): void {
  stub.remote.prctl(PR_SET_PDEATHSIG, 0);
  if (!stub.init) return;
  const init = stub.init;
  init.prctl(PR_SET_PDEATHSIG, 0);
  init.dispose();
  // orig_rax -1: it starts at its code, not in a system call to restart.
  setRegs(init.tid, { ...getRegs(init.tid), rip: BigInt(stub.control + INIT_CODE_OFFSET), orig_rax: -1n });
  ptrace(PTRACE_DETACH, init.tid, 0, 0);
}

/** Unmaps the whole user address space but the control area. */
function unmapAllBut(remote: RemoteTask, control: number): void {
  remote.munmap(0, control);
  remote.munmap(control + CONTROL_SIZE, USER_SPACE_END - control - CONTROL_SIZE);
}
