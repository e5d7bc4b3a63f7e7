// Mounts imgfs on a fresh temporary directory for one test, and takes it down again in the
// test's teardown whatever state the test left it in (CLI killed, mount stale, dump open).

import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { run } from './run.js';
import { exited, waitForExit } from './targets.js';
import { sleep, waitUntil } from './wait.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const MOUNT_TIMEOUT_MS = 30_000;
const EXIT_TIMEOUT_MS = 15_000;

export interface Mount {
  dir: string;
  proc: ChildProcess;
  /** Everything the CLI wrote to stderr so far. */
  stderr(): string;
  /**
   * stderr once it matches: a line the server wrote before it answered may still be in the pipe
   * when the answer reaches the test. As it is after a few seconds if it never matches.
   */
  stderrOnceMatching(pattern: RegExp): Promise<string>;
}

/** The /proc/mounts entry for dir, if mounted: { type, options }. */
export async function mountEntry(dir: string): Promise<{ type: string; options: string[] } | undefined> {
  const mounts = await fsp.readFile('/proc/mounts', 'utf8');
  for (const line of mounts.split('\n')) {
    const [, mountPoint, type, options] = line.split(' ');
    // The kernel writes a space, tab, newline or backslash of a path as an octal escape.
    if (mountPoint?.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))) === dir) return { type, options: options.split(',') };
  }
  return undefined;
}

export async function makeMountDir(t: ExecutionContext): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'imgfs-test-'));
  t.teardown(() => removeMountDir(dir));
  return dir;
}

/** Lazily unmounts dir if anything is still mounted there, then removes it. */
export async function removeMountDir(dir: string): Promise<void> {
  if (await mountEntry(dir)) await run('fusermount', ['-uz', dir]);
  await fsp.rmdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw new Error(`could not remove mount point ${dir}: ${err.message}`);
  });
}

/**
 * Stops the CLI the way a user would (SIGTERM), falling back to SIGKILL if it hangs. A server that
 * deadlocked on its own mount cannot even die (its thread waits uninterruptibly for a reply only
 * it could send): then its FUSE connection is aborted, which fails that wait.
 */
export async function stopCli(proc: ChildProcess, dir: string): Promise<void> {
  if (exited(proc)) return;
  const connection = await fuseConnection(dir);
  proc.kill('SIGTERM');
  if (await exitsWithin(proc, EXIT_TIMEOUT_MS)) return;
  proc.kill('SIGKILL');
  if (await exitsWithin(proc, EXIT_TIMEOUT_MS)) return;
  if (connection !== undefined) await abortFuseConnection(connection);
  await waitForExit(proc);
}

function exitsWithin(proc: ChildProcess, ms: number): Promise<boolean> {
  return Promise.race([waitForExit(proc).then(() => true), sleep(ms).then(() => false)]);
}

/** The FUSE connection number of the mount on dir: its device's minor number (fusectl names it so). */
async function fuseConnection(dir: string): Promise<number | undefined> {
  const escaped = dir.replace(/ /g, '\\040');
  const line = (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n').find((l) => l.split(' ')[4] === escaped);
  return line ? Number(line.split(' ')[2].split(':')[1]) : undefined;
}

const FUSECTL = '/sys/fs/fuse/connections';

/** Aborts a FUSE connection through fusectl, mounting fusectl for the moment if it is not. */
async function abortFuseConnection(connection: number): Promise<void> {
  const mountedHere = (await fsp.readdir(FUSECTL)).length === 0 && (await run('mount', ['-t', 'fusectl', 'none', FUSECTL])).code === 0;
  try {
    await fsp.writeFile(path.join(FUSECTL, String(connection), 'abort'), '1');
  } finally {
    if (mountedHere) await run('umount', [FUSECTL]);
  }
}

export function mountImgfs(t: ExecutionContext, opts: string[] = []): Promise<Mount> {
  return mountServer(t, (dir) => ['src/cli.ts', dir, ...opts]);
}

/** Mounts what a script of this repository serves: `node --import=tsx <script> <mountpoint>`. */
export function mountScript(t: ExecutionContext, script: string): Promise<Mount> {
  return mountServer(t, (dir) => [script, dir]);
}

const LOG_LINE_TIMEOUT_MS = 5000;

async function mountServer(t: ExecutionContext, scriptArgs: (dir: string) => string[]): Promise<Mount> {
  const dir = await makeMountDir(t);
  // A worker that crashes runs no teardown: the parent-death signal still takes the mount down.
  const proc = spawn('setpriv', ['--pdeathsig', 'SIGTERM', process.execPath, '--import=tsx', ...scriptArgs(dir)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Registered after makeMountDir's teardown, so it runs first (ava runs teardowns in reverse).
  t.teardown(() => stopCli(proc, dir));
  let stderr = '';
  proc.stdout!.resume();
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });

  await waitUntil(`the server to mount ${dir}`, async () => {
    if (exited(proc)) {
      throw new Error(`the server exited (${proc.exitCode ?? proc.signalCode}) before mounting ${dir}`);
    }
    return mountEntry(dir);
  }, MOUNT_TIMEOUT_MS).catch((err: Error) => {
    throw new Error(`${err.message}\nits stderr:\n${stderr}`);
  });
  const stderrOnceMatching = (pattern: RegExp) =>
    waitUntil('the log line', () => pattern.test(stderr), LOG_LINE_TIMEOUT_MS).then(() => stderr, () => stderr);
  return { dir, proc, stderr: () => stderr, stderrOnceMatching };
}

/**
 * Pids of the imgfs processes serving dir (node running the CLI with dir as an argument): how a
 * test finds the background server ./mount.sh started for it.
 */
export async function imgfsPidsServing(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = (await fsp.readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0');
      const exe = await fsp.readlink(`/proc/${entry}/exe`);
      if (exe === process.execPath && argv.includes(dir) && argv.some((arg) => arg.endsWith('src/cli.ts') || arg.endsWith('dist/cli.js'))) pids.push(Number(entry));
    } catch {
      // The process exited while we looked, or is a kernel thread without an exe.
    }
  }
  return pids;
}
