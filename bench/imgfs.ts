// The file system under test, as its own process (`node --import=tsx src/cli.ts <dir>`): the
// bench opens dumps asynchronously from its own event loop, which would deadlock if it also
// served them.

import { execFile, spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanup } from './cleanup.js';
import { exited, waitForExit } from './procs.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MOUNT_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export interface Imgfs {
  dir: string;
  /** The FS process (node itself, no wrapper), for /proc/<pid>/status. */
  pid: number;
  /** Path of a file of a process on the mount, e.g. file(1234, 'dump'). */
  file(pid: number, name: string): string;
  /** The last lines the FS process wrote to stderr (it logs one line per failed operation). */
  recentLog(): string;
}

const LOG_LINES = 20;

async function isMounted(dir: string): Promise<boolean> {
  const mounts = await fsp.readFile('/proc/mounts', 'utf8');
  return mounts.split('\n').some((line) => {
    const [, mountPoint, type] = line.split(' ');
    return mountPoint === dir && type?.startsWith('fuse');
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Mounts `node --import=tsx <entry...> <dir> <options...>` (imgfs by default) on a fresh directory. */
export async function startImgfs(entry: string[] = ['src/cli.ts'], options: string[] = []): Promise<Imgfs> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'imgfs-bench-mnt-'));
  cleanup.add(`remove mount point ${dir}`, () => fsp.rmdir(dir));
  const child = spawn(process.execPath, ['--import=tsx', ...entry, dir, ...options], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  cleanup.add(`unmount ${dir}`, async () => {
    if (!exited(child)) {
      child.kill('SIGTERM');
      await Promise.race([waitForExit(child), sleep(STOP_TIMEOUT_MS)]);
      if (!exited(child)) child.kill('SIGKILL');
      await waitForExit(child);
    }
    if (await isMounted(dir)) await new Promise((resolve) => execFile('fusermount', ['-uz', dir], resolve));
  });

  const deadline = Date.now() + MOUNT_TIMEOUT_MS;
  while (!(await isMounted(dir))) {
    if (exited(child)) throw new Error(`imgfs exited (${child.exitCode ?? child.signalCode}) before mounting ${dir}:\n${stderr.trim()}`);
    if (Date.now() > deadline) throw new Error(`imgfs did not mount ${dir} within ${MOUNT_TIMEOUT_MS} ms:\n${stderr.trim()}`);
    await sleep(50);
  }
  return {
    dir,
    pid: child.pid!,
    file: (pid, name) => path.join(dir, String(pid), name),
    recentLog: () => stderr.trimEnd().split('\n').slice(-LOG_LINES).join('\n'),
  };
}
