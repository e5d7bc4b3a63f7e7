// The mount command's refusals: each one line on stderr, exit 2 for a mistake in the command line,
// 1 for a mount point or device it cannot mount on; nothing mounted, nothing made.

import test from 'ava';
import { promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir } from './helpers/files.js';
import { repoRoot } from './helpers/mount.js';
import { run } from './helpers/run.js';

const NOBODY = 65534;

const imgfs = (args: string[], asUser?: number) => run(
  asUser === undefined ? process.execPath : 'setpriv',
  [...(asUser === undefined ? [] : [`--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups', process.execPath]), '--import=tsx', 'src/cli.ts', ...args],
  { cwd: repoRoot },
);

test('command-line mistakes: exit 2 and one line saying which', async (t) => {
  const dir = await makeTempDir(t);
  const cases: [string[], string][] = [
    [[], 'no mount point or command given (imgfs --help)'],
    [['--live'], "unknown option '--live': the mount point comes first (imgfs --help)"],
    [['--version'], "unknown option '--version': the mount point comes first (imgfs --help)"],
    [[dir, '--bogus'], "unknown option '--bogus' (imgfs --help lists them)"],
    [[dir, '--freeze-timeout'], '--freeze-timeout needs a number of milliseconds after it'],
    [[dir, '--freeze-timeout', 'soon'], "--freeze-timeout needs a positive number of milliseconds, not 'soon'"],
  ];
  for (const [args, problem] of cases) {
    const result = await imgfs(args);
    t.is(result.code, 2, args.join(' '));
    t.is(result.stderr, `imgfs: ${problem}\n`);
    t.is(result.stdout, '');
  }
  t.deepEqual(await fsp.readdir(dir), [], 'nothing made in the mount point');
  t.deepEqual((await fsp.readdir(repoRoot)).filter((name) => name.startsWith('-')), [], 'no directory named after an option');
});

test('a mount point that is missing, a file, or not empty: exit 1, one line, nothing made', async (t) => {
  const dir = await makeTempDir(t);
  const [missing, file, full] = ['missing', 'file', 'full'].map((name) => path.join(dir, name));
  await fsp.writeFile(file, 'x');
  await fsp.mkdir(full);
  await fsp.writeFile(path.join(full, 'inside'), 'x');
  for (const [mountPoint, problem] of [
    [missing, 'does not exist: make the directory first (./mount.sh makes it)'],
    [file, 'is not a directory'],
    [full, 'is not empty: mount on an empty directory'],
  ]) {
    const result = await imgfs([mountPoint]);
    t.is(result.code, 1, mountPoint);
    t.is(result.stderr, `imgfs: ${mountPoint} ${problem}\n`);
  }
  t.deepEqual((await fsp.readdir(dir)).sort(), ['file', 'full'], 'the missing one was not made');
});

test('a user who cannot open /dev/fuse: exit 1, one line saying so', async (t) => {
  if ((statSync('/dev/fuse').mode & 0o006) === 0o006) {
    t.log('/dev/fuse is open to every user here: nothing to refuse');
    t.pass();
    return;
  }
  const dir = await makeTempDir(t);
  await fsp.chown(dir, NOBODY, NOBODY);
  const result = await imgfs([dir], NOBODY);
  t.is(result.code, 1);
  t.is(result.stderr, 'imgfs: cannot open /dev/fuse (EACCES): imgfs mounts as root, with the fuse module loaded\n');
});
