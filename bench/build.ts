// The bench's C programs: bench/<name>.c, built with -O2 into bench/build/<name>.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileOnce } from '../scripts/compile-c.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));

/** Path of bench/build/<name>, compiled from bench/<name>.c unless already up to date. */
export function buildHelper(name: string): Promise<string> {
  return compileOnce(path.join(benchDir, `${name}.c`), path.join(benchDir, 'build', name), ['-O2', '-Wall']);
}
