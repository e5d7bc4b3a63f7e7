// Restore round trips for the tests: dump a live target through a real mount, run the restorer
// CLI on the image (from a file or a pipe), follow what the restored process prints (it writes
// to the restorer's standard output), and kill every process a test made when it ends.

import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { decodeExtension } from '../../src/extension.js';
import type { ImageExtension } from '../../src/extension-model.js';
import { showMain } from '../../src/show.js';
import { makeTempDir } from './files.js';
import { parseImage, PAGE_SIZE } from './image.js';
import { mountImgfs, repoRoot } from './mount.js';
import { runOk } from './run.js';
import { KnownProcesses, killAndReap, waitForExit, type Target } from './targets.js';
import { sleep, waitUntil } from './wait.js';
import { OutputLines } from './lines.js';
import { commOf } from './groundtruth.js';

const LINE_TIMEOUT_MS = 30_000;
const STDERR_GRACE_MS = 500;

/**
 * Copies the dump of a live target to <dir>/task.img through a fresh mount (with the given mount
 * options); returns the path.
 */
export async function dumpToFile(t: ExecutionContext, target: Target, dir?: string, mountOptions: string[] = []): Promise<string> {
  const mnt = await mountImgfs(t, mountOptions);
  const image = path.join(dir ?? await makeTempDir(t, 'imgfs-restore-'), 'task.img');
  await runOk('cp', [path.join(mnt.dir, String(target.pid), 'dump'), image]);
  return image;
}

/** Kills the original so that only the restored process can print from now on. */
export async function killOriginal(target: Target): Promise<void> {
  await killAndReap(target.proc);
}

/** The 8-byte little-endian word at a user address, as the image holds it. */
export async function imageWord(image: string, address: number): Promise<bigint> {
  const bytes = await fsp.readFile(image);
  const page = address - (address % PAGE_SIZE);
  const record = parseImage(bytes).pages.find((p) => p.vaddr === page);
  if (!record) throw new Error(`the image has no page at 0x${page.toString(16)}`);
  return bytes.readBigUInt64LE(record.offset + (address - page));
}

export interface Restorer {
  proc: ChildProcess;
  lines(): string[];
  stderr(): string;
  /**
   * Its stderr once it matches (or as it is after a timeout): a warning written before the process
   * ran may still be in its pipe when the process's own output is seen.
   */
  stderrOnceMatching(pattern: RegExp): Promise<string>;
  /** Resolves with the first stdout line from `from` on that matches; rejects after a timeout. */
  waitForLine(match: (line: string) => boolean, opts?: { from?: number; timeoutMs?: number }): Promise<string>;
  /** Resolves with the restorer's exit code (or 128 + signal). */
  exited: Promise<number>;
  /** The restored process: its pid, once the restore is done (--detach prints it; else our child). */
  restoredPid(): Promise<number>;
}

export interface RestoreRun {
  /** The image on the restorer's standard input (the image argument is then "-"). */
  stdinFile?: string;
  /** Run the image itself (binfmt_misc) instead of the CLI. */
  command?: string[];
  /** Added to the restorer's environment. */
  env?: Record<string, string>;
}

/** Pids a test must kill when it ends, whatever happened. */
function killOnTeardown(t: ExecutionContext, pids: () => number[]): void {
  t.teardown(() => {
    for (const pid of pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
  });
}


function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Whether the restorer is done with its child: no longer traced, and the program is no longer
 * the stub's (setpriv, sh, then sleep) nor, between posix_spawn's fork and exec, the restorer's own (node).
 */
function isRestored(pid: number): boolean {
  try {
    const tracer = /^TracerPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    const exe = readlinkSync(`/proc/${pid}/exe`);
    return tracer === '0' && exe !== process.execPath && !/\/(sleep|setpriv|dash)$/.test(exe);
  } catch {
    return false;
  }
}

function runsNode(pid: number): boolean {
  try {
    return readlinkSync(`/proc/${pid}/exe`) === process.execPath;
  } catch {
    return false;
  }
}

/** Starts `imgfs restore <args>`; the test's teardown kills the restorer and what it restored. */
export function startRestorer(t: ExecutionContext, args: string[], run: RestoreRun = {}): Restorer {
  const command = run.command ?? [process.execPath, '--import=tsx', 'src/cli.ts', 'restore', ...args];
  const proc = spawn(command[0], command.slice(1), {
    cwd: repoRoot,
    env: { ...process.env, ...run.env },
    stdio: [run.stdinFile ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    // A session of its own, without the terminal the tests may run on: a restorer that has one
    // hands it to the process it restores (test/restore-terminal.test.ts tests that on a pty).
    detached: true,
  });
  if (run.stdinFile) {
    const input = (async () => {
      const handle = await fsp.open(run.stdinFile!, 'r');
      try {
        for await (const chunk of handle.createReadStream()) {
          if (!proc.stdin!.write(chunk)) await new Promise((resolve) => proc.stdin!.once('drain', resolve));
        }
      } finally {
        proc.stdin!.end();
      }
    })();
    input.catch(() => undefined); // a restorer that fails early closes the pipe
  }
  const restored = new KnownProcesses();
  const output = new OutputLines(proc, `the restorer (pid ${proc.pid})`);
  const exited = new Promise<number>((resolve) => proc.on('exit', (code, signal) => {
    const status = code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 0);
    // 'exit' may come before the last of its stderr: wait for the pipe to end, which it does at
    // once but where a restored process holds it too.
    void Promise.race([output.stderrEnded, sleep(STDERR_GRACE_MS)]).then(() => resolve(status));
  }));
  // Registered first, so it runs last: the restored processes die before the restorer.
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await waitForExit(proc);
  });
  killOnTeardown(t, () => [...restored.stillRunning(), ...childrenOf(proc.pid!)]);

  const waitForLine = (match: (line: string) => boolean, opts: { from?: number; timeoutMs?: number } = {}) =>
    output.waitFor(match, { from: opts.from, timeoutMs: opts.timeoutMs ?? LINE_TIMEOUT_MS });

  async function restoredPid(): Promise<number> {
    if (args.includes('--detach')) {
      const pid = Number(await waitForLine((line) => /^\d+$/.test(line)));
      restored.add(pid);
      return pid;
    }
    // In the foreground the restored process is the restorer's child.
    const pid: number = await waitUntil('the restored process', (): number | undefined => {
      if (proc.exitCode !== null) throw new Error(`the restorer exited (${proc.exitCode}) before restoring: ${output.stderr}`);
      // bin/imgfs, a shell until it execs node, has children of its own (sed, find) first.
      return runsNode(proc.pid!) ? childrenOf(proc.pid!).find(isRestored) : undefined;
    }, LINE_TIMEOUT_MS, 20).then((found) => found!, (err: Error) => {
      throw new Error(`${err.message}; children ${childrenOf(proc.pid!).map((c) => `${c}:${commOf(c)}`).join(' ')}; stderr ${output.stderr}`);
    });
    restored.add(pid);
    return pid;
  }

  const stderrOnceMatching = (pattern: RegExp) =>
    waitUntil('the warning', () => pattern.test(output.stderr), LINE_TIMEOUT_MS).then(() => output.stderr, () => output.stderr);
  return { proc, lines: () => [...output.seen], stderr: () => output.stderr, stderrOnceMatching, waitForLine, exited, restoredPid };
}

/** The extension of an image file. */
export async function readImageExtension(image: string): Promise<ImageExtension> {
  const bytes = await fsp.readFile(image);
  const end = parseImage(bytes).end;
  return decodeExtension(bytes.subarray(end), end);
}

/** What `imgfs show <image>` prints. */
export async function showText(image: string): Promise<string> {
  let out = '';
  const status = await showMain([image], { out: (text) => { out += text; }, err: (text) => { out += text; } });
  if (status !== 0) throw new Error(`imgfs show ${image} failed: ${out}`);
  return out;
}

/** Parses the numbers of a line like "tick 12" or "counts 1 2 3 4 1". */
export function numbersOf(line: string): number[] {
  return line.trim().split(/\s+/).slice(1).map(Number);
}

/**
 * Whether a restored counter's first value goes on from the one its memory held at the dump: the
 * next, or that one itself when the dump came between the increment and the line that prints it.
 */
export function continuesCount(first: number, dumped: number): boolean {
  return first === dumped + 1 || first === dumped;
}

/** Processes named like the stub of the restorer with this pid. */
export function stubsOf(restorerPid: number): number[] {
  const name = `restore-${restorerPid}`;
  return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name;
    } catch {
      return false;
    }
  });
}
