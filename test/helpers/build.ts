// The C targets of the tests: test/targets/<name>.c, built into test/build/<name>.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileOnce } from '../../scripts/compile-c.js';

const testDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const targetsDir = path.join(testDir, 'targets');
export const buildDir = path.join(testDir, 'build');

const DEFAULT_FLAGS = ['-O1', '-g', '-pthread'];

/** What targets share, which any of them may include. */
const SHARED_HEADER = path.join(targetsDir, 'targets.h');

/** Path of test/build/<name>, compiled from test/targets/<name>.c unless already up to date. */
export function buildTarget(name: string, flags: readonly string[] = DEFAULT_FLAGS): Promise<string> {
  return compileOnce(path.join(targetsDir, `${name}.c`), path.join(buildDir, name), [...flags], [SHARED_HEADER]);
}
