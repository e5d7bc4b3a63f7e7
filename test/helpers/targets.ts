// Starts the C targets as child processes and reads their output line by line. Spawning is
// asynchronous on purpose: a synchronous child call that touches the mount would block the
// event loop that an in-process FUSE server needs to answer it.

import { spawn, type ChildProcess } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import { chmodSync, copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { buildTarget } from './build.js';
import { startTime } from './groundtruth.js';
import { OutputLines } from './lines.js';
import { waitUntil } from './wait.js';

export interface Target {
  pid: number;
  /** The program it runs (built from test/targets/<name>.c). */
  binary: string;
  /** Fields of the target's first stdout line (e.g. ['ready', '7f12...', '16777216']). */
  info: string[];
  proc: ChildProcess;
  /** Every stdout line so far, the ready line included. */
  lines(): string[];
  /** Resolves with the first line, from `from` on, that matches; rejects after timeoutMs. */
  waitForLine(match: (line: string) => boolean, opts?: { from?: number; timeoutMs?: number }): Promise<string>;
  /** True until the process has exited and been reaped. */
  alive(): boolean;
}

const READY_TIMEOUT_MS = 20_000;

export function exited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null;
}

/** Resolves once proc has exited (immediately when it already has). */
export function waitForExit(proc: ChildProcess): Promise<void> {
  if (exited(proc)) return Promise.resolve();
  return new Promise((resolve) => proc.once('exit', () => resolve()));
}

const REAP_TIMEOUT_MS = 20_000;

/**
 * Kills a child of ours (only if it still runs) and waits until it is reaped. A killed tracee
 * is reported to its tracer before its parent: a dumper that never lets go shows up here.
 */
export async function killAndReap(proc: ChildProcess): Promise<void> {
  if (proc.pid === undefined) return; // never started: nothing to reap
  if (!exited(proc)) proc.kill('SIGKILL');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(
      `pid ${proc.pid} was not reaped within ${REAP_TIMEOUT_MS} ms of SIGKILL (is it still traced?)`)), REAP_TIMEOUT_MS);
  });
  try {
    await Promise.race([waitForExit(proc), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface StartOptions {
  /** Run as this uid and gid (setpriv execs the target, so the pid stays the target's). */
  runAs?: number;
  /** gcc flags instead of the usual ones (a 32-bit target, say). */
  compileFlags?: readonly string[];
  /** Run a copy of the program made in this directory, which the test may delete or replace. */
  copyInto?: string;
}

export async function startTarget(t: ExecutionContext, name: string, args: string[] = [], opts: StartOptions = {}): Promise<Target> {
  const built = await buildTarget(name, opts.compileFlags);
  const binary = opts.copyInto === undefined ? built : path.join(opts.copyInto, name);
  if (binary !== built) {
    copyFileSync(built, binary);
    chmodSync(binary, 0o755);
  }
  // setpriv execs the target (the pid stays the target's). --pdeathsig: a test worker that ava
  // kills (a timed-out file runs no teardown) takes its targets with it.
  const identity = opts.runAs === undefined ? [] : [`--reuid=${opts.runAs}`, `--regid=${opts.runAs}`, '--clear-groups'];
  const proc = spawn('setpriv', ['--pdeathsig', 'KILL', ...identity, binary, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => killAndReap(proc));

  const output = new OutputLines(proc, `target ${name} (pid ${proc.pid})`);
  const waitForLine = (match: (line: string) => boolean, opts: { from?: number; timeoutMs?: number } = {}) =>
    output.waitFor(match, { from: opts.from, timeoutMs: opts.timeoutMs ?? READY_TIMEOUT_MS });

  await new Promise<void>((resolve, reject) => {
    proc.once('spawn', resolve);
    proc.once('error', reject);
  });
  const ready = await waitForLine(() => true);
  return {
    pid: proc.pid!,
    binary,
    info: ready.trim().split(/\s+/),
    proc,
    lines: () => [...output.seen],
    waitForLine,
    alive: () => !exited(proc),
  };
}

/**
 * `sh -c 'sleep 1000 & exec sleep 1000'`: dash runs the last command in its own process, so the
 * parent is a sleep with the first sleep as its child, which it never waits for. Both are killed
 * in the test's teardown.
 */
export async function startSleepWithChild(t: ExecutionContext): Promise<{ parent: ChildProcess; child: number }> {
  const parent = spawn('sh', ['-c', 'sleep 1000 & exec sleep 1000'], { stdio: 'ignore' });
  t.teardown(() => killAndReap(parent));
  const child = await waitUntil('the child', () => {
    const listed = readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').trim();
    return readFileSync(`/proc/${parent.pid}/comm`, 'utf8').trim() === 'sleep' && listed ? Number(listed) : undefined;
  });
  killAtTeardown(t, child!);
  return { parent, child: child! };
}

/**
 * Processes known by pid and start time: those of them still running. Pids wrap around quickly
 * while tests run (a thread churner uses thousands a second): one that has exited may be another
 * test's process by teardown time.
 */
export class KnownProcesses {
  private readonly started = new Map<number, number>();

  add(pid: number): void {
    try {
      this.started.set(pid, startTime(pid));
    } catch {
      // Gone already: nothing to kill.
    }
  }

  stillRunning(): number[] {
    return [...this.started].filter(([pid, started]) => {
      try {
        return startTime(pid) === started;
      } catch {
        return false;
      }
    }).map(([pid]) => pid);
  }
}

/** Kills pid at teardown if it still runs: not another process that has its pid by then. */
export function killAtTeardown(t: ExecutionContext, pid: number): void {
  const known = new KnownProcesses();
  known.add(pid);
  t.teardown(() => {
    for (const running of known.stillRunning()) {
      try {
        process.kill(running, 'SIGKILL');
      } catch {
        // Exited since it was looked at.
      }
    }
  });
}
