// Compiles the C targets of the tests once per source change. Several ava worker processes may
// build the same target at once: each compiles to its own temporary name and renames it into
// place, so no process ever runs a half-written binary.

import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const testDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const targetsDir = path.join(testDir, 'targets');
export const buildDir = path.join(testDir, 'build');

async function mtimeMs(file: string): Promise<number | undefined> {
  try {
    return (await fsp.stat(file)).mtimeMs;
  } catch {
    return undefined;
  }
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

/** Path of test/build/<name>, compiled from test/targets/<name>.c unless already up to date. */
export async function buildTarget(name: string): Promise<string> {
  const source = path.join(targetsDir, `${name}.c`);
  const binary = path.join(buildDir, name);
  const sourceTime = await mtimeMs(source);
  if (sourceTime === undefined) throw new Error(`no C target named ${name}: ${source} does not exist`);
  const binaryTime = await mtimeMs(binary);
  if (binaryTime !== undefined && binaryTime >= sourceTime) return binary;

  await fsp.mkdir(buildDir, { recursive: true });
  const temp = `${binary}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await runGcc(['-O1', '-g', '-pthread', '-o', temp, source]);
    await fsp.rename(temp, binary);
  } finally {
    await fsp.rm(temp, { force: true });
  }
  return binary;
}
