// The mount command line: its options, and its refusals, each one line on stderr, exit 2 for a
// mistake in the command line, 1 for a mount point or device it cannot mount on; nothing mounted,
// nothing made.

import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir } from './helpers/files.js';
import { makeMountDir, mountEntry, repoRoot, stopCli } from './helpers/mount.js';
import { waitUntil } from './helpers/wait.js';
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
    [['--live'], 'no mount point given (imgfs --help)'],
    [['--version', dir], "unknown option '--version' (imgfs --help lists them)"],
    [[dir, '--bogus'], "unknown option '--bogus' (imgfs --help lists them)"],
    [[dir, 'extra'], `one mount point only: '${dir}', then 'extra' (imgfs --help)`],
    [['--', dir, '--live'], `one mount point only: '${dir}', then '--live' (imgfs --help)`],
    [[dir, '--freeze-timeout'], '--freeze-timeout needs a number of milliseconds after it'],
    [[dir, '--freeze-timeout', 'soon'], "--freeze-timeout needs a positive number of milliseconds, not 'soon'"],
    [[dir, '--freeze-timeout=soon'], "--freeze-timeout needs a positive number of milliseconds, not 'soon'"],
    [[''], 'the mount point is an empty string'],
    [[dir, '--live', '--no-freeze'], '--live and --no-freeze exclude each other: --live freezes a task for its snapshot'],
  ];
  for (const [args, problem] of cases) {
    const result = await imgfs(args);
    t.is(result.code, 2, args.join(' '));
    t.is(result.stderr, `imgfs: ${problem}\n`);
    t.is(result.stdout, '');
  }
  const help = await imgfs([dir, '--help']);
  t.deepEqual([help.code, help.stderr], [0, ''], '--help after the mount point');
  t.regex(help.stdout, /^usage:\n/);
  t.deepEqual(await fsp.readdir(dir), [], 'nothing made in the mount point');
  t.deepEqual((await fsp.readdir(repoRoot)).filter((name) => name.startsWith('-')), [], 'no directory named after an option');
});

test('options may come before the mount point', async (t) => {
  const dir = await makeMountDir(t);
  const proc = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', '--allow-other', dir], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => stopCli(proc, dir));
  const mounted = await waitUntil('the mount', () => mountEntry(dir));
  t.true(mounted!.options.includes('allow_other'), mounted!.options.join(','));
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

/**
 * `imgfs <given>` in the foreground, as a test's child: its stderr so far, and how it ended (exit
 * code, or the signal that killed it). The teardown kills it and unmounts mounted (where given
 * leads).
 */
function foregroundMount(t: ExecutionContext, given: string, mounted: string) {
  const proc = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', given], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  const exited = new Promise<number | string | null>((resolve) => proc.on('close', (code, signal) => resolve(code ?? signal)));
  t.teardown(async () => {
    proc.kill('SIGKILL');
    await run('fusermount', ['-uz', mounted]);
  });
  return { proc, stderr: () => stderr, exited };
}

test('a mount point given through a symbolic link: mounted on the directory it leads to, and unmounted from it on SIGTERM, sent twice', async (t) => {
  const dir = await makeTempDir(t);
  const real = path.join(dir, 'real');
  const link = path.join(dir, 'link');
  await fsp.mkdir(real);
  await fsp.symlink(real, link);
  const { proc, stderr, exited } = foregroundMount(t, link, real);
  await waitUntil('the mount', () => stderr().includes('mounted on'), 30_000);
  t.is(stderr(), `imgfs: mounted on ${real}\n`);
  t.is((await mountEntry(real))?.type, 'fuse.imgfs');
  // Twice, as an impatient user would: the second must not kill it halfway.
  proc.kill('SIGTERM');
  proc.kill('SIGTERM');
  t.is(await exited, 0, stderr());
  t.is(await mountEntry(real), undefined, 'unmounted');
});

test('SIGTERM the moment the mount appears, before imgfs says it is mounted: it unmounts and exits 0, leaving no dead mount behind', async (t) => {
  const dir = await makeMountDir(t);
  const { proc, stderr, exited } = foregroundMount(t, dir, dir);
  await waitUntil('the mount', async () => (await mountEntry(dir)) !== undefined || proc.exitCode !== null, 30_000, 1);
  proc.kill('SIGTERM');
  t.is(await exited, 0, stderr());
  t.is(await mountEntry(dir), undefined, 'unmounted');
});

