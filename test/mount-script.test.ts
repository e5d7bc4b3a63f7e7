// Integration tests of ./mount.sh: background mount, unmount, options passed through, and
// recovery of a stale mount point whose server was killed.

import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { errnoOf, makeTempDir } from './helpers/files.js';
import { isLive, taskStatus } from './helpers/groundtruth.js';
import { imgfsPidsServing, makeMountDir, mountEntry, repoRoot } from './helpers/mount.js';
import { run, runOk } from './helpers/run.js';
import { killAndReap, startTarget } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';

const MOUNT_SH = path.join(repoRoot, 'mount.sh');
const SCRIPT_TIMEOUT_MS = 90_000;

/**
 * A fresh mount point whose teardown unmounts it, ends the server mount.sh left behind and removes
 * the log and pid file mount.sh keeps in /run/imgfs.
 */
async function mountPoint(t: ExecutionContext): Promise<string> {
  const dir = await makeMountDir(t);
  t.teardown(() => unmountAndForget(dir));
  return dir;
}

async function unmountAndForget(dir: string): Promise<void> {
  if (await mountEntry(dir)) await run(MOUNT_SH, ['-u', dir], { timeoutMs: SCRIPT_TIMEOUT_MS });
  for (const pid of await imgfsPidsServing(dir)) process.kill(pid, 'SIGKILL');
  // The pid file too: a test of a failing `mount.sh -u` leaves it, as it should.
  for (const kept of ['log', 'pid']) await fsp.rm(`/run/imgfs/${dir.replace(/\//g, '_')}.${kept}`, { force: true });
}

const mountSh = (args: string[]) => runOk(MOUNT_SH, args, { timeoutMs: SCRIPT_TIMEOUT_MS });

async function listsPids(dir: string): Promise<boolean> {
  const ls = await run('ls', [dir]);
  return ls.code === 0 && ls.stdout.split('\n').includes(String(process.pid));
}

test.serial('./mount.sh returns once mounted; ./mount.sh -u unmounts and ends the server', async (t) => {
  const dir = await mountPoint(t);
  await mountSh([dir]);
  t.is((await mountEntry(dir))?.type, 'fuse.imgfs');
  t.true(await listsPids(dir), 'ls of the mount lists the test process pid');
  const servers = await imgfsPidsServing(dir);
  t.is(servers.length, 1, 'one imgfs process serves the mount');

  await mountSh(['-u', dir]);
  t.is(await mountEntry(dir), undefined, 'unmounted');
  await waitUntil('the imgfs process to exit', async () => (await imgfsPidsServing(dir)).length === 0);
  t.deepEqual(await fsp.readdir(dir), [], 'the mount point is an empty directory again');
});

test.serial('a mount point whose name has a space and a backslash (escaped in /proc/mounts): mounted, and unmounted', async (t) => {
  const dir = path.join(await makeMountDir(t), 'with space\\and backslash');
  t.teardown(async () => {
    await unmountAndForget(dir);
    await fsp.rm(dir, { recursive: true, force: true });
  });
  await mountSh([dir]);
  t.is((await mountEntry(dir))?.type, 'fuse.imgfs');
  t.true(await listsPids(dir));
  await mountSh(['-u', dir]);
  t.is(await mountEntry(dir), undefined, 'unmounted');
});

test.serial('options after the mount point reach imgfs', async (t) => {
  const dir = await mountPoint(t);
  await mountSh([dir, '--allow-other']);
  t.true((await mountEntry(dir))!.options.includes('allow_other'));
  await mountSh(['-u', dir]);
});

test.serial('./mount.sh on a mount point imgfs already serves: exit 1, saying so; the mount serves on, its options unchanged', async (t) => {
  const dir = await mountPoint(t);
  await mountSh([dir]);
  const servers = await imgfsPidsServing(dir);
  const again = await run(MOUNT_SH, [dir, '--allow-other'], { timeoutMs: SCRIPT_TIMEOUT_MS });
  t.is(again.code, 1);
  t.regex(again.stderr, /is already mounted; unmount it first/);
  t.deepEqual(await imgfsPidsServing(dir), servers, 'the same server, none added');
  t.false((await mountEntry(dir))!.options.includes('allow_other'));
  t.true(await listsPids(dir));
  await mountSh(['-u', dir]);
});

test.serial('./mount.sh recovers a stale mount point whose imgfs was killed', async (t) => {
  const dir = await mountPoint(t);
  await mountSh([dir]);
  const [server] = await imgfsPidsServing(dir);
  t.truthy(server, 'the imgfs process is found');
  process.kill(server, 'SIGKILL');
  // Gone or a zombie: its files, /dev/fuse among them, are closed by then.
  await waitUntil('the killed imgfs to be gone', () => !isLive(server));
  // readdir, not stat: a stat may be answered from attributes the kernel still caches.
  // ENOTCONN once the server is gone; ECONNABORTED if the connection was also aborted by hand.
  t.true(['ENOTCONN', 'ECONNABORTED'].includes((await errnoOf(fsp.readdir(dir)))!), 'stale: Transport endpoint is not connected');

  await mountSh([dir]);
  t.is((await mountEntry(dir))?.type, 'fuse.imgfs');
  t.true(await listsPids(dir), 'the new mount answers');
  await mountSh(['-u', dir]);
  t.is(await mountEntry(dir), undefined);
});

test.serial('./mount.sh -u after its imgfs died and its pid went to another process: that process is left alone, the mount point is cleaned up', async (t) => {
  const dir = await mountPoint(t);
  await mountSh([dir]);
  const pidFile = `/run/imgfs/${dir.replace(/\//g, '_')}.pid`;
  const [server, started] = (await fsp.readFile(pidFile, 'utf8')).trim().split(' ').map(Number);
  t.deepEqual(await imgfsPidsServing(dir), [server], 'the pid file names the server');
  t.true(started > 0, 'and its start time');
  process.kill(server, 'SIGKILL');
  await waitUntil('the killed imgfs to be gone', () => !isLive(server));
  // Pids are not reused on demand: the file names another process instead, as after a reuse.
  const other = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.teardown(() => killAndReap(other));
  await fsp.writeFile(pidFile, `${other.pid} ${started}\n`);

  await mountSh(['-u', dir]);
  t.true(isLive(other.pid!), 'the process that has the pid now is not signalled');
  t.is(await mountEntry(dir), undefined, 'the stale mount is gone');
  t.false(existsSync(pidFile));
});

test.serial('./mount.sh -u of an imgfs that has exited but is not reaped yet (a slow reaper): unmounted at once, exit 0', async (t) => {
  const dir = await mountPoint(t);
  // The reaper inherits the imgfs that mount.sh leaves running, and never reaps it.
  const reaper = await startTarget(t, 'lazy_reaper', [MOUNT_SH, dir]);
  t.is(await reaper.waitForLine((line) => line.startsWith('ready ')), 'ready 0', 'mounted');
  const [server] = await imgfsPidsServing(dir);
  const started = Date.now();
  const result = await run(MOUNT_SH, ['-u', dir], { timeoutMs: SCRIPT_TIMEOUT_MS });
  t.is(result.code, 0, result.stderr);
  t.true(Date.now() - started < 5000, `done in ${Date.now() - started} ms, not after a 10 s wait`);
  t.is(taskStatus(server).state, 'Z', 'the imgfs it stopped is a zombie still');
  t.is(await mountEntry(dir), undefined);
});

test.serial('./mount.sh creates a mount point that does not exist yet', async (t) => {
  const parent = await mountPoint(t);
  const dir = path.join(parent, 'not', 'yet');
  t.teardown(async () => {
    await unmountAndForget(dir);
    await fsp.rm(path.join(parent, 'not'), { recursive: true, force: true });
  });
  await mountSh([dir]);
  t.is((await mountEntry(dir))?.type, 'fuse.imgfs');
  t.true(await listsPids(dir), 'ls of the new mount point lists the test process pid');
  await mountSh(['-u', dir]);
  t.is(await mountEntry(dir), undefined, 'unmounted');
});

test.serial('./mount.sh refusals: one line each, exit 1 (2 for a mistake in the command line), no log left behind', async (t) => {
  const dir = await mountPoint(t);
  const unmount = await run(MOUNT_SH, ['-u', dir], { timeoutMs: SCRIPT_TIMEOUT_MS });
  t.deepEqual([unmount.code, unmount.stderr], [1, `mount.sh: ${dir} is not mounted\n`]);

  await fsp.writeFile(path.join(dir, 'inside'), 'x');
  const full = await run(MOUNT_SH, [dir], { timeoutMs: SCRIPT_TIMEOUT_MS });
  t.is(full.code, 1);
  t.is(full.stderr, `imgfs: ${dir} is not empty: mount on an empty directory\n`);
  t.false(existsSync(`/run/imgfs/${dir.replace(/\//g, '_')}.log`), 'its log removed once shown');
  await fsp.rm(path.join(dir, 'inside'));

  const typo = path.join(dir, 'no', 'such');
  const bogus = await run(MOUNT_SH, [typo, '--bogus'], { timeoutMs: SCRIPT_TIMEOUT_MS });
  t.deepEqual([bogus.code, bogus.stderr], [2, "imgfs: unknown option '--bogus' (imgfs --help lists them)\n"]);
  t.deepEqual(await fsp.readdir(dir), [], 'the directories it made for the mount point are gone again');
  const optionFirst = await run(MOUNT_SH, ['--allow-other', dir], { timeoutMs: SCRIPT_TIMEOUT_MS });
  t.deepEqual([optionFirst.code, optionFirst.stderr], [2, `mount.sh: '--allow-other': the mount point comes first: ${MOUNT_SH} <mountpoint> [imgfs options]\n`]);

  const unprivileged = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', MOUNT_SH, dir], { timeoutMs: SCRIPT_TIMEOUT_MS });
  t.deepEqual([unprivileged.code, unprivileged.stderr], [1, 'mount.sh: run it as root: it installs what is missing, and mounts through /dev/fuse\n']);
  t.is(await mountEntry(dir), undefined, 'nothing mounted');
});

test('the set-up finds libfuse2 in a long ldconfig listing: it installs nothing (grep -q stopping early once took that for a missing library)', async (t) => {
  const bin = await makeTempDir(t, 'imgfs-setup-bin-');
  // libfuse first, then far more than a pipe holds: a reader that stops at the match leaves the lister writing.
  await fsp.writeFile(path.join(bin, 'ldconfig'),
    '#!/bin/sh\nprintf "\\tlibfuse.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/libfuse.so.2\\n"\nyes "\\tlibother.so.1 (libc6,x86-64) => /lib/libother.so.1" | head -n 200000\n', { mode: 0o755 });
  await fsp.writeFile(path.join(bin, 'apt-get'), `#!/bin/sh\necho "$@" >> ${bin}/apt-get.called\nexit 1\n`, { mode: 0o755 });
  const setup = await run('env', [`PATH=${bin}:${process.env.PATH}`, 'bash', 'scripts/setup.sh'], { cwd: repoRoot, timeoutMs: SCRIPT_TIMEOUT_MS });
  t.is(setup.code, 0, setup.stderr);
  t.false(existsSync(path.join(bin, 'apt-get.called')), 'apt-get was not run');
});
