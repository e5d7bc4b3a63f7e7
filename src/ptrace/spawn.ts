// Starting and ending the stub process that a restore turns into the dumped task. The stub is an
// ordinary program (sleep) started with posix_spawn: Node's child_process would register it with
// libuv, whose SIGCHLD handler reaps its children with waitpid and would swallow the ptrace stops
// we need to see. A posix_spawn child is ours alone to wait for.

import koffi from 'koffi';
import { constants as fsConstants, existsSync, readlinkSync, realpathSync } from 'node:fs';
import { constants } from 'node:os';
import { NativeError } from './errors.js';
import { __WALL, libc, nativeError, usleep, waitpid } from './libc.js';
import { SIGINFO_SIZE } from './syscalls.js';

const rawPosixSpawn = libc.func('int posix_spawn(_Out_ int *pid, const char *path, void *fileActions, void *attr, const char **argv, const char **envp)');
const rawAttrInit = libc.func('int posix_spawnattr_init(void *attr)');
const rawAttrDestroy = libc.func('int posix_spawnattr_destroy(void *attr)');
const rawAttrSetFlags = libc.func('int posix_spawnattr_setflags(void *attr, short flags)');
const rawAttrSetSigMask = libc.func('int posix_spawnattr_setsigmask(void *attr, void *sigset)');
const rawAttrSetSigDefault = libc.func('int posix_spawnattr_setsigdefault(void *attr, void *sigset)');
const rawActionsInit = libc.func('int posix_spawn_file_actions_init(void *actions)');
const rawActionsDestroy = libc.func('int posix_spawn_file_actions_destroy(void *actions)');
const rawActionsAddOpen = libc.func('int posix_spawn_file_actions_addopen(void *actions, int fd, const char *path, int flags, uint32_t mode)');
const rawActionsAddDup2 = libc.func('int posix_spawn_file_actions_adddup2(void *actions, int fd, int newfd)');
const rawSigEmptySet = libc.func('int sigemptyset(void *set)');
const rawSigFillSet = libc.func('int sigfillset(void *set)');
const rawKill = libc.func('int kill(int pid, int sig)');

const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
/** glibc's posix_spawnattr_t is 336 bytes, posix_spawn_file_actions_t 80, sigset_t 128: room to spare. */
const OPAQUE_SIZE = 512;
const { SIGKILL } = constants.signals;
const { ESRCH } = constants.errno;

/** The program every stub runs: it only has to stay alive until we take it over. */
const SLEEP = realpathSync(['/bin/sleep', '/usr/bin/sleep'].find((path) => existsSync(path)) ?? '/bin/sleep');
/**
 * What starts it, having made SIGKILL its death signal: a restorer killed at any moment (SIGKILL
 * runs nothing of ours) until the restore's last few calls (letLive) takes its half-made process
 * along. One killed before setpriv's prctl
 * has been taken over by another parent by the time the shell after it starts: sleep then never
 * runs.
 */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path)) ?? '/usr/bin/setpriv';
const STILL_OURS = '[ "$PPID" = "$1" ] && exec "$0" infinity';
const EXEC_TIMEOUT_MS = 5000;

export interface SpawnOptions {
  /** A file to open as the stub's standard input instead of ours (which carries the image); null: ours. */
  stdin: string | null;
}

function checkResult(result: number, call: string): void {
  // posix_spawn* return the error number instead of setting errno.
  if (result !== 0) throw nativeError(result, call);
}

/**
 * Starts `sleep infinity` as our child (through setpriv, which sets its death signal, and sh), with every
 * signal at its default action and none blocked (Node ignores SIGPIPE, and ignored signals
 * survive exec), our standard input, output and error. Returns its pid once it runs sleep.
 */
export function spawnStub(options: SpawnOptions): number {
  const attr = Buffer.alloc(OPAQUE_SIZE);
  const actions = Buffer.alloc(OPAQUE_SIZE);
  const empty = Buffer.alloc(OPAQUE_SIZE);
  const full = Buffer.alloc(OPAQUE_SIZE);
  rawSigEmptySet(empty);
  rawSigFillSet(full);
  checkResult(rawAttrInit(attr) as number, 'posix_spawnattr_init');
  checkResult(rawActionsInit(actions) as number, 'posix_spawn_file_actions_init');
  try {
    checkResult(rawAttrSetFlags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK) as number, 'posix_spawnattr_setflags');
    checkResult(rawAttrSetSigMask(attr, empty) as number, 'posix_spawnattr_setsigmask');
    checkResult(rawAttrSetSigDefault(attr, full) as number, 'posix_spawnattr_setsigdefault');
    // Node marks 0, 1 and 2 close-on-exec; dup2 of a descriptor onto itself clears the mark.
    for (const fd of [0, 1, 2]) {
      if (fd === 0 && options.stdin !== null) {
        const flags = fsConstants.O_RDWR | fsConstants.O_NOCTTY;
        checkResult(rawActionsAddOpen(actions, 0, options.stdin, flags, 0) as number, `posix_spawn_file_actions_addopen(${options.stdin})`);
      } else {
        checkResult(rawActionsAddDup2(actions, fd, fd) as number, 'posix_spawn_file_actions_adddup2');
      }
    }
    const pid = [0];
    const argv = [SETPRIV, '--pdeathsig', 'KILL', '/bin/sh', '-c', STILL_OURS, SLEEP, String(process.pid), null];
    checkResult(rawPosixSpawn(pid, SETPRIV, actions, attr, argv, [null]) as number, `posix_spawn(${SETPRIV})`);
    awaitSleep(pid[0]);
    return pid[0];
  } finally {
    rawActionsDestroy(actions);
    rawAttrDestroy(attr);
  }
}

/** Returns once the stub runs sleep: setpriv or sh, still themselves, are not what is to be taken over. */
function awaitSleep(pid: number): void {
  const deadline = performance.now() + EXEC_TIMEOUT_MS;
  for (;;) {
    let exe: string | undefined;
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      // Only a process that has exited has no executable.
    }
    if (exe === SLEEP) return;
    if (exe === undefined || performance.now() > deadline) {
      killAndReap([pid]);
      throw nativeError(ESRCH, `spawn(${SETPRIV})`, `the stub (pid ${pid}) ${exe === undefined ? 'exited' : `still runs ${exe}`} before running ${SLEEP}`);
    }
    usleep(100);
  }
}

/**
 * SIGKILLs a child of ours and reaps it. tids: the child (its pid) first, then every other
 * thread of it we trace: a traced thread that dies must be waited for by its tracer, and only
 * then can the thread group leader be reaped.
 */
export function killAndReap(tids: readonly number[]): void {
  const [pid, ...others] = tids;
  if ((rawKill(pid, SIGKILL) as number) !== 0) return; // already reaped: nothing is left
  for (const tid of [...others, pid]) {
    for (;;) {
      try {
        const result = waitpid(tid, __WALL);
        if (result.kind === 'exited' || result.kind === 'killed') break;
      } catch (err) {
        if (err instanceof NativeError && err.errno === constants.errno.ECHILD) break;
        throw err;
      }
    }
  }
}

export function kill(pid: number, signal: number): void {
  if ((rawKill(pid, signal) as number) !== 0) throw nativeError(koffi.errno(), `kill(${pid}, ${signal})`);
}

const rawWaitidAsync = libc.func('int waitid(int idtype, int id, void *info, int options)');

const P_PID = 1;
const WSTOPPED = 2;
const WEXITED = 4;
/** siginfo_t's si_code and si_status, as waitid fills them in for a child. */
const SI_CODE = 8;
const SI_STATUS = 24;
const CLD_EXITED = 1;
const CLD_STOPPED = 5;

/** How a child ended, or that it stopped (a stop signal: the child goes on after SIGCONT). */
export type ChildChange = { exited: number } | { killed: number } | { stopped: number };

/**
 * Resolves when a child of ours that nobody traces any more ends or stops. The wait runs on one of
 * koffi's worker threads, which may wait for any child of the process: the event loop stays free
 * (for the signals a foreground restore forwards).
 */
export function waitForChange(pid: number): Promise<ChildChange> {
  return new Promise((resolve, reject) => {
    const info = Buffer.alloc(SIGINFO_SIZE);
    const wait = () => rawWaitidAsync.async(P_PID, pid, info, WEXITED | WSTOPPED, (err: unknown, result: number) => {
      if (err) return reject(err);
      // A signal caught by the waiting thread (EINTR) ends the wait early: wait again.
      if (result < 0) return existsSync(`/proc/${pid}`) ? wait() : reject(nativeError(constants.errno.ECHILD, `waitid(${pid})`));
      const code = info.readInt32LE(SI_CODE);
      const status = info.readInt32LE(SI_STATUS);
      resolve(code === CLD_EXITED ? { exited: status } : code === CLD_STOPPED ? { stopped: status } : { killed: status });
    });
    wait();
  });
}
