// Compiles the bench's C programs (bench/<name>.c) with gcc -O2 into bench/build/, once per
// source change.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runOk } from './procs.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const buildDir = path.join(benchDir, 'build');

async function mtimeMs(file: string): Promise<number | undefined> {
  return fsp.stat(file).then((st) => st.mtimeMs, () => undefined);
}

/** Path of bench/build/<name>, compiled from bench/<name>.c unless already up to date. */
export async function buildHelper(name: string): Promise<string> {
  const source = path.join(benchDir, `${name}.c`);
  const binary = path.join(buildDir, name);
  const sourceTime = await mtimeMs(source);
  if (sourceTime === undefined) throw new Error(`no bench program named ${name}: ${source} does not exist`);
  const binaryTime = await mtimeMs(binary);
  if (binaryTime !== undefined && binaryTime >= sourceTime) return binary;
  await fsp.mkdir(buildDir, { recursive: true });
  await runOk('gcc', ['-O2', '-Wall', '-o', binary, source]);
  return binary;
}
