// Compiles a C program of the tests or the bench once per source change. Several processes may
// build the same program at once (ava's workers): each compiles to its own temporary name, and the
// first to finish links it into place; the others keep that one, since replacing a binary that a
// test is already running would show it as "(deleted)" in /proc/<pid>/maps.

import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';

async function mtimeMs(file: string): Promise<number | undefined> {
  return (await statOf(file))?.mtimeMs;
}

function statOf(file: string): Promise<{ mtimeMs: number; ino: number } | undefined> {
  return fsp.stat(file).then((st) => st, () => undefined);
}

function runGcc(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const gcc = spawn('gcc', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    gcc.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    gcc.on('error', reject);
    gcc.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`gcc ${args.join(' ')} failed (exit ${code}):\n${stderr}`));
    });
  });
}

/** Compiles source into binary with gcc flags unless binary is newer than source and the headers it may include. */
export async function compileOnce(source: string, binary: string, flags: string[], headers: readonly string[] = []): Promise<string> {
  const times = await Promise.all([source, ...headers].map(mtimeMs));
  if (times.some((time) => time === undefined)) throw new Error(`no C program ${source}, or no ${headers.join(', ')}`);
  const sourceTime = Math.max(...(times as number[]));
  const stale = await statOf(binary);
  if (stale !== undefined && stale.mtimeMs >= sourceTime) return binary;

  await fsp.mkdir(path.dirname(binary), { recursive: true });
  const temp = `${binary}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await runGcc([...flags, '-o', temp, source]);
    if (stale !== undefined) {
      // Stale: replace it, unless another process did while we compiled (its may be running).
      if ((await statOf(binary))?.ino === stale.ino) await fsp.rename(temp, binary);
    } else await fsp.link(temp, binary).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err; // another process built it first: keep that one
    });
  } finally {
    await fsp.rm(temp, { force: true });
  }
  return binary;
}
