// Runs the real tools (cat, cp, gcore, the C helpers) as child processes, asynchronously: the
// FUSE server is another process, but a synchronous call would still stall the bench's own timers.

import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { cleanup } from './cleanup.js';

export interface Finished {
  stdout: string;
  stderr: string;
  /** Wall-clock seconds from spawn to exit. */
  seconds: number;
}

export function exited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null;
}

/** Resolves once proc has exited (immediately when it already has). */
export function waitForExit(proc: ChildProcess): Promise<void> {
  if (exited(proc)) return Promise.resolve();
  return new Promise((resolve) => proc.once('exit', () => resolve()));
}

/** Kills a child of ours if it still runs, and waits until it is reaped. */
export async function killAndReap(proc: ChildProcess): Promise<void> {
  if (!exited(proc)) proc.kill('SIGKILL');
  await waitForExit(proc);
}

/** Kills the process group of a child started with `detached: true` (gcore is a shell script
 *  whose gdb would outlive it), and waits until the child is reaped. */
async function killGroupAndReap(proc: ChildProcess): Promise<void> {
  try {
    process.kill(-proc.pid!, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
  await waitForExit(proc);
}

/** Runs a command to completion, timed with process.hrtime from spawn to exit; a non-zero exit
 *  is an error carrying its stderr. stdout goes to /dev/null unless captured. */
export function runOk(command: string, args: string[], opts: { captureStdout?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<Finished> {
  const commandLine = `${command} ${args.join(' ')}`;
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ['ignore', opts.captureStdout ? 'pipe' : 'ignore', 'pipe'], env: opts.env, detached: true });
    const registration = cleanup.add(`kill ${commandLine}`, () => killGroupAndReap(child));
    let seconds = 0;
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    child.on('exit', () => { seconds = Number(process.hrtime.bigint() - start) / 1e9; });
    child.on('error', (err) => {
      registration.forget();
      reject(new Error(`could not run ${commandLine}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      registration.forget();
      if (code === 0) resolve({ stdout, stderr, seconds });
      else reject(new Error(`${commandLine} failed (${code ?? signal}): ${stderr.trim()}`));
    });
  });
}

/** The value of one field of /proc/<pid>/status, e.g. 'TracerPid' or 'VmHWM'. */
export async function procStatusField(pid: number, field: string): Promise<string> {
  const status = await fsp.readFile(`/proc/${pid}/status`, 'utf8');
  const line = status.split('\n').find((l) => l.startsWith(`${field}:`));
  if (line === undefined) throw new Error(`/proc/${pid}/status has no ${field} field`);
  return line.slice(field.length + 1).trim();
}

/** Waits until no tracer holds pid: imgfs releases a snapshot after the last close, which the
 *  kernel reports to it asynchronously, and the next run must find the target running. */
export async function waitUntraced(pid: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await procStatusField(pid, 'TracerPid')) !== '0') {
    if (Date.now() > deadline) throw new Error(`pid ${pid} is still traced ${timeoutMs} ms after its dump was closed`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
