// Integration tests of how the dump mount fails: clearly, with the right errno, and without
// leaving a task frozen or the mount broken. Targets are started before the mount so that teardown
// stops the FS (which lets every task go) before it kills and reaps them.

import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { constants as fsConstants, promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { buildTarget } from './helpers/build.js';
import { errnoOf, makeTempDir, openHeld, readAt, readFileAsync, readWhole } from './helpers/files.js';
import { commOf, isLive, PATTERN_KEY, procFileOwner, readMem, startTime, taskStatus, threadStatuses, type TaskStatus } from './helpers/groundtruth.js';
import { loadAt, loadBytes, parseElfCore } from './helpers/elfcore.js';
import { PAGE_SIZE, parseImage } from './helpers/image.js';
import { mountEntry, mountImgfs, type Mount } from './helpers/mount.js';
import { run } from './helpers/run.js';
import { killAndReap, startTarget, waitForExit, type Target } from './helpers/targets.js';
import { assertImageMatchesProcess } from './helpers/verify.js';
import { sleep, waitUntil } from './helpers/wait.js';

const NOBODY = 65534;
const dumpOf = (mnt: string, pid: number) => path.join(mnt, String(pid), 'dump');
const isReleased = (status: TaskStatus) => status.state !== 't' && status.tracerPid === 0;

/** The mount still answers: it lists the given live pid and serves a parsable dump of it. */
async function assertMountServes(t: ExecutionContext, mnt: Mount, other: Target): Promise<void> {
  t.true((await fsp.readdir(mnt.dir)).includes(String(other.pid)), 'the mount still lists other pids');
  const bytes = await readFileAsync(dumpOf(mnt.dir, other.pid));
  t.is(parseImage(bytes).size, bytes.length, 'the mount still serves another pid');
}

/** Runs the probe (open + read to end of file) as another user: { open, read } errno names or counts. */
async function probeAs(uid: number, file: string): Promise<{ open?: string; read?: string }> {
  const probe = await buildTarget('probe');
  const result = await run('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', probe, file]);
  if (result.code !== 0) throw new Error(`probe as uid ${uid} failed (exit ${result.code ?? result.signal}): ${result.stderr}`);
  return Object.fromEntries(result.stdout.trim().split('\n').map((line) => line.split(' ')));
}

test.serial('a pid that does not exist is ENOENT', async (t) => {
  const mnt = await mountImgfs(t);
  const pidMax = Number(await fsp.readFile('/proc/sys/kernel/pid_max', 'utf8'));
  const file = dumpOf(mnt.dir, pidMax + 1);
  t.is(await errnoOf(fsp.stat(path.dirname(file))), 'ENOENT');
  t.is(await errnoOf(fsp.stat(file)), 'ENOENT');
  t.is(await errnoOf(fsp.open(file, 'r')), 'ENOENT');
  t.is(await errnoOf(fsp.stat(path.join(mnt.dir, 'not-a-pid'))), 'ENOENT');
});

test.serial('a target killed while its dump is open: reads fail with EIO, the mount serves others', async (t) => {
  const target = await startTarget(t, 'pattern', ['8']);
  const other = await startTarget(t, 'counter');
  const mnt = await mountImgfs(t);
  const handle = await fsp.open(dumpOf(mnt.dir, target.pid), 'r');
  t.teardown(() => handle.close().catch(() => undefined));
  const size = (await handle.stat()).size;
  t.is((await readAt(handle, 0, PAGE_SIZE)).length, PAGE_SIZE);

  process.kill(target.pid, 'SIGKILL');
  await waitUntil(`pid ${target.pid} to die`, () => !isLive(target.pid));
  // The header first: bytes of the snapshot alone, which touch no page of the target.
  t.is(await errnoOf(readAt(handle, 0, 100)), 'EIO', 'the header, read after the target died');
  t.is(await errnoOf(readAt(handle, Math.floor(size / 2), PAGE_SIZE)), 'EIO', 'and every read from then on');
  t.is(await errnoOf(readAt(handle, size - 3 * PAGE_SIZE, PAGE_SIZE)), 'EIO');
  t.is((await handle.stat()).size, size, 'fstat of the open file: its snapshot\'s, the process gone or not');
  await killAndReap(target.proc);
  t.is((await handle.stat()).size, size, 'and once reaped');
  await handle.close();

  await waitUntil(`pid ${target.pid} to leave the listing`, async () => !(await fsp.readdir(mnt.dir)).includes(String(target.pid)));
  t.is(await errnoOf(fsp.stat(dumpOf(mnt.dir, target.pid))), 'ENOENT');
  await assertMountServes(t, mnt, other);
});

test.serial('a sequential reader whose target is killed between two reads: the next read fails with EIO, not from its read-ahead', async (t) => {
  const target = await startTarget(t, 'pattern', ['8']);
  const mnt = await mountImgfs(t);
  const handle = await fsp.open(dumpOf(mnt.dir, target.pid), 'r');
  t.teardown(() => handle.close().catch(() => undefined));
  const middle = Math.floor((await handle.stat()).size / 2);
  // Two reads that continue each other: the next request's page records are read ahead.
  t.is((await readAt(handle, middle, PAGE_SIZE)).length, PAGE_SIZE);
  t.is((await readAt(handle, middle + PAGE_SIZE, PAGE_SIZE)).length, PAGE_SIZE);

  process.kill(target.pid, 'SIGKILL');
  await waitUntil(`pid ${target.pid} to die`, () => !isLive(target.pid));
  t.is(await errnoOf(readAt(handle, middle + 2 * PAGE_SIZE, PAGE_SIZE)), 'EIO', 'the request that was read ahead');
  await handle.close();
  await killAndReap(target.proc);
});

/** Whether the task is blocked in system call nr (/proc/<pid>/syscall starts with it). */
function sleepsIn(pid: number, nr: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/syscall`, 'latin1').startsWith(`${nr} `);
  } catch {
    return false;
  }
}

test.serial('a process holding a file of this mount open: its dump is served, the mount does not wait on itself', async (t) => {
  const mnt = await mountImgfs(t);
  const dir = await fsp.open(mnt.dir, 'r');
  t.teardown(() => dir.close().catch(() => undefined));
  // As `ls -l <mount>/<own pid>` does: hold the mount's directory open and stat our own files.
  t.true((await withTimeout(fsp.stat(dumpOf(mnt.dir, process.pid)), 20_000, 'stat of our own dump')).size > 0);
  // A process with that directory as its standard input: dumped whole.
  const holder = spawn('sleep', ['1000'], { stdio: [dir.fd, 'ignore', 'ignore'] });
  t.teardown(() => killAndReap(holder));
  // Until sleep sleeps, its memory is still changing: the copy spawn forked, then an exec that
  // names the task before it has mapped the program. Asleep in clock_nanosleep (230), it is done.
  await waitUntil('the holder to sleep', () => isLive(holder.pid!) && commOf(holder.pid!) === 'sleep' && sleepsIn(holder.pid!, 230));
  const file = dumpOf(mnt.dir, holder.pid!);
  const size = (await withTimeout(fsp.stat(file), 20_000, 'stat of its dump')).size;
  const bytes = await withTimeout(readFileAsync(file), 60_000, 'read of its dump');
  t.is(bytes.length, size);
  t.is(parseImage(bytes).size, size);
});

test.serial('a process whose threads come and go: its dump has a size every time, and opens', async (t) => {
  const target = await startTarget(t, 'thread_churn');
  const mnt = await mountImgfs(t);
  const file = dumpOf(mnt.dir, target.pid);
  for (let i = 0; i < 30; i++) t.true((await fsp.stat(file)).size > 0, `stat ${i}`);
  const bytes = await readFileAsync(file);
  t.is(parseImage(bytes).size, bytes.length);
});

test.serial('the mount\'s own process: EPERM, the log saying why; the mount serves on', async (t) => {
  const other = await startTarget(t, 'counter');
  const mnt = await mountImgfs(t);
  const own = mnt.proc.pid!;
  for (const file of [dumpOf(mnt.dir, own), path.join(mnt.dir, String(own), 'core')]) t.is(await errnoOf(readFileAsync(file)), 'EPERM');
  const logged = new RegExp(`pid ${own} is this imgfs: it cannot freeze the process that serves the mount`);
  t.regex(await mnt.stderrOnceMatching(logged), logged);
  await assertMountServes(t, mnt, other);
});

const COMPAT32_FLAGS = ['-m32', '-nostdlib', '-static', '-fno-pie', '-no-pie', '-fno-stack-protector', '-O1'];

test.serial('a 32-bit process: the open fails with ENOEXEC, saying why, and the process runs on untouched', async (t) => {
  // A kernel may run no 32-bit program at all (its ia32 emulation off, as on some VMs): then no
  // such process can exist, and execve says so. bash, unlike execvp, does not hand a binary the
  // kernel refuses to sh as a script; where it runs, its first tick after "ready" meets a closed pipe.
  const probe = await run('bash', ['-c', '"$0" | head -n1', await buildTarget('compat32', COMPAT32_FLAGS)]);
  if (probe.stdout !== 'ready\n') {
    t.regex(probe.stderr, /Exec format error/, `the kernel refuses 32-bit programs here (exit ${probe.code})`);
    t.log('this kernel runs no 32-bit program: no 32-bit process to dump here');
    return;
  }
  const target = await startTarget(t, 'compat32', [], { compileFlags: COMPAT32_FLAGS });
  const mnt = await mountImgfs(t);
  for (const file of [dumpOf(mnt.dir, target.pid), path.join(mnt.dir, String(target.pid), 'core')]) {
    const cat = await run('cat', [file]);
    t.is(cat.code, 1);
    t.regex(cat.stderr, /Exec format error/, 'ENOEXEC, as cat tells it');
  }
  const logged = new RegExp(`pid ${target.pid} runs 32-bit code \\(thread ${target.pid}\\): imgfs dumps x86_64 processes only`);
  t.regex(await mnt.stderrOnceMatching(logged), logged);
  await waitUntil('the dump to let go', () => isReleased(taskStatus(target.pid)));
  const ticks = target.lines().length;
  await target.waitForLine(() => true, { from: ticks + 2 });
  t.true(target.alive(), 'it ticks on');
});

test.serial('a process another tracer holds (a debugger, strace): EBUSY, the log naming the tracer; it runs on, still its tracer\'s', async (t) => {
  const tracer = await startTarget(t, 'traced_child');
  const [child, counterAt] = [Number(tracer.info[1]), parseInt(tracer.info[2], 16)];
  const mnt = await mountImgfs(t);
  t.is(await errnoOf(fsp.open(dumpOf(mnt.dir, child), 'r')), 'EBUSY');
  const logged = new RegExp(`already traced by pid ${tracer.pid} \\(traced_child\\)`);
  t.regex(await mnt.stderrOnceMatching(logged), logged);
  t.is(taskStatus(child).tracerPid, tracer.pid, 'still traced by its own tracer');
  const counter = () => readMem(child, counterAt, 8).readBigUInt64LE(0);
  const before = counter();
  await waitUntil('the tracee to count on', () => counter() > before);
  await assertMountServes(t, mnt, tracer);
});

test.serial('a process under a seccomp filter that kills it for our injected calls: dumped, and it runs on', async (t) => {
  const target = await startTarget(t, 'seccomp_kill');
  const mnt = await mountImgfs(t);
  const bytes = await readFileAsync(dumpOf(mnt.dir, target.pid));
  t.is(parseImage(bytes).size, bytes.length);
  t.true((await readFileAsync(path.join(mnt.dir, String(target.pid), 'core'))).length > 0);
  await waitUntil('the dump to let go', () => isReleased(taskStatus(target.pid)));
  await sleep(200);
  t.true(target.alive(), 'the filter did not kill it');
  // Let go, it runs on into its sleep.
  await waitUntil('the target to sleep', () => taskStatus(target.pid).state === 'S');
});

test.serial('a reused pid never serves the old process snapshot', async (t) => {
  // The helper keeps one child at a fixed pid and replaces it, on SIGUSR1, with a different
  // process at the same pid: generation g is `pattern <g + 1>`, with (g + 1) MiB of pattern.
  const helper = await startTarget(t, 'pidreuse', [await buildTarget('pattern')]);
  const pid = Number(helper.info[1]);
  /** The pattern target's ready fields (region, bytes) of generation g. */
  const readyOf = async (generation: number) => {
    const childLine = await helper.waitForLine((line) => line === `child ${pid} ${generation}`);
    const child = helper.lines().indexOf(childLine);
    const ready = await helper.waitForLine((line) => line.startsWith('ready '), { from: child + 1 });
    const [, region, bytes] = ready.split(' ');
    return { region: parseInt(region, 16), bytes: Number(bytes) };
  };
  const mnt = await mountImgfs(t);
  const file = dumpOf(mnt.dir, pid);

  const dumpNow = async () => {
    const handle = await fsp.open(file, 'r');
    t.teardown(() => handle.close().catch(() => undefined));
    const size = (await handle.stat()).size;
    const bytes = await readAt(handle, 0, size + 1);
    t.is(bytes.length, size, 'fstat size is the size of what reads yield');
    t.is((await fsp.stat(file)).size, size, 'stat of the path agrees');
    return { handle, bytes, image: parseImage(bytes) };
  };
  /** The dump holds this generation's pattern region: its VMA, and its pattern at the start. */
  const holdsRegion = (dump: Awaited<ReturnType<typeof dumpNow>>, { region, bytes }: { region: number; bytes: number }) => {
    const page = dump.image.pages.find((record) => record.vaddr === region);
    return dump.image.vmas.some((vma) => vma.start <= region && region + bytes <= vma.end) && page !== undefined &&
      dump.bytes.readBigUInt64LE(page.offset) === (BigInt(region) ^ PATTERN_KEY);
  };

  // Generation 0 dumped and closed, then replaced: the next open is generation 1's snapshot.
  const zeroRegion = await readyOf(0);
  const zero = await dumpNow();
  t.true(holdsRegion(zero, zeroRegion), 'generation 0 in its dump');
  await zero.handle.close();
  await waitUntil('the dumper to let go', () => threadStatuses(pid).every(isReleased));
  const zeroStart = startTime(pid);
  process.kill(helper.pid, 'SIGUSR1');
  const oneRegion = await readyOf(1);
  const oneStart = startTime(pid);
  t.not(oneStart, zeroStart, 'the pid names a different process now');
  const one = await dumpNow();
  t.true(holdsRegion(one, oneRegion), 'the dump of the reused pid is the new process');
  assertImageMatchesProcess(t, one.image, one.bytes, pid);

  // Generation 1 replaced while its dump is still open: the old file fails rather than read the
  // new process, and a new open gets generation 2.
  process.kill(helper.pid, 'SIGUSR1');
  await waitUntil(`generation 1 (pid ${pid}) to die`, () => {
    try {
      return !isLive(pid) || startTime(pid) !== oneStart;
    } catch {
      return true; // gone between the two reads
    }
  });
  const page = one.image.pages.find((record) => record.vaddr === oneRegion.region + PAGE_SIZE)!;
  t.is(await errnoOf(readAt(one.handle, page.offset, PAGE_SIZE)), 'EIO', 'the old snapshot fails');
  await one.handle.close();
  const twoRegion = await readyOf(2);
  const two = await dumpNow();
  t.true(holdsRegion(two, twoRegion), 'a new open of the reused pid is the newest process');
  assertImageMatchesProcess(t, two.image, two.bytes, pid);
});

test.serial('the mount is read-only: every change is EROFS, as on any read-only file system; the target runs on', async (t) => {
  const target = await startTarget(t, 'counter');
  const mnt = await mountImgfs(t);
  t.true((await mountEntry(mnt.dir))!.options.includes('ro'));
  const dir = path.join(mnt.dir, String(target.pid));
  const file = dumpOf(mnt.dir, target.pid);
  const changes: [string, () => Promise<unknown>][] = [
    ['open O_RDWR', () => fsp.open(file, 'r+')],
    ['open O_WRONLY|O_APPEND', () => fsp.open(file, 'a')],
    ['open O_TRUNC', () => fsp.open(file, fsConstants.O_RDONLY | fsConstants.O_TRUNC)],
    ['create', () => fsp.open(path.join(dir, 'new'), 'wx')],
    ['chmod', () => fsp.chmod(file, 0o644)],
    ['chown', () => fsp.chown(file, NOBODY, NOBODY)],
    ['utimes', () => fsp.utimes(file, 0, 0)],
    ['truncate', () => fsp.truncate(file, 0)],
    ['unlink', () => fsp.unlink(file)],
    ['rmdir', () => fsp.rmdir(dir)],
    ['mkdir', () => fsp.mkdir(path.join(mnt.dir, 'new'))],
    ['rename', () => fsp.rename(file, path.join(dir, 'moved'))],
    ['symlink', () => fsp.symlink('/tmp', path.join(dir, 'link'))],
    ['link', () => fsp.link(file, path.join(dir, 'hard'))],
  ];
  for (const [what, change] of changes) t.is(await errnoOf(change()), 'EROFS', what);
  t.true(threadStatuses(target.pid).every(isReleased), 'never frozen');
  t.true((await fsp.readdir(dir)).includes('dump'), 'and it serves on');
});

test.serial('permissions: default_permissions enforces 0400 for other users; no allow_other without the flag', async (t) => {
  const rootTarget = await startTarget(t, 'pattern', ['1']);
  const nobodyTarget = await startTarget(t, 'pattern', ['1'], { runAs: NOBODY });
  const nonDumpable = await startTarget(t, 'nondumpable', [], { runAs: NOBODY });
  t.deepEqual(procFileOwner(nobodyTarget.pid), { uid: NOBODY, gid: NOBODY });
  t.deepEqual(procFileOwner(nonDumpable.pid), { uid: 0, gid: 0 }, 'the kernel gives a non-dumpable process files to root');

  const closed = await mountImgfs(t);
  const closedOptions = (await mountEntry(closed.dir))!.options;
  t.true(closedOptions.includes('default_permissions'));
  t.false(closedOptions.includes('allow_other'));
  t.deepEqual(await probeAs(NOBODY, closed.dir), { open: 'EACCES' }, 'without --allow-other, the mount is closed to others');
  t.deepEqual(await probeAs(NOBODY, dumpOf(closed.dir, nobodyTarget.pid)), { open: 'EACCES' }, 'even their own dumps');

  const open = await mountImgfs(t, ['--allow-other']);
  t.true((await mountEntry(open.dir))!.options.includes('allow_other'));
  const rootDump = dumpOf(open.dir, rootTarget.pid);
  const nobodyDump = dumpOf(open.dir, nobodyTarget.pid);
  t.like(await fsp.stat(nobodyDump), { uid: NOBODY, gid: NOBODY, mode: 0o100400 });
  t.deepEqual(await probeAs(NOBODY, rootDump), { open: 'EACCES' }, "another user cannot read root's process");
  const nonDumpableDump = dumpOf(open.dir, nonDumpable.pid);
  t.like(await fsp.stat(nonDumpableDump), { uid: 0, gid: 0, mode: 0o100400 }, 'a non-dumpable process dump is root-owned, as in /proc');
  t.deepEqual(await probeAs(NOBODY, nonDumpableDump), { open: 'EACCES' }, 'not even its own user reads a non-dumpable process');
  const own = await probeAs(NOBODY, nobodyDump);
  t.is(own.open, '0', 'a user opens the dump of their own process');
  t.true(Number(own.read) > 1 << 20, `and reads it to the end, its 1 MiB pattern included (${own.read} bytes)`);

  // Its euid is nobody's, but ptrace (and /proc/<pid>/mem) would refuse nobody: so does the mount.
  for (const mode of ['saved', 'group']) {
    const dropped = await startTarget(t, 'mixed_ids', [mode]);
    const file = dumpOf(open.dir, dropped.pid);
    t.is(procFileOwner(dropped.pid).uid, NOBODY, `${mode}: /proc gives its files to nobody`);
    t.like(await fsp.stat(file), { uid: 0, gid: 0 }, `${mode}: root's here`);
    t.deepEqual(await probeAs(NOBODY, file), { open: 'EACCES' }, `${mode}: nobody cannot read it`);
  }
});

test.serial('a process shown as a user\'s that then runs a set-user-ID program: its files are refused, the process runs on', async (t) => {
  // The kernel checked an open against the owner shown before the freeze; imgfs cannot tell who
  // opens, so after such a change it serves nobody, root included, rather than the wrong user.
  const dir = await makeTempDir(t, 'imgfs-setuid-');
  await fsp.chmod(dir, 0o755);
  const setuidCounter = path.join(dir, 'counter');
  await fsp.copyFile(await buildTarget('counter'), setuidCounter);
  await fsp.chmod(setuidCounter, 0o4755);
  const mnt = await mountImgfs(t, ['--allow-other']);
  const target = await startTarget(t, 'exec_on_signal', [setuidCounter], { runAs: NOBODY });
  const file = dumpOf(mnt.dir, target.pid);
  t.like(await fsp.stat(file), { uid: NOBODY }, 'shown as nobody\'s');
  process.kill(target.pid, 'SIGUSR1');
  await target.waitForLine((line) => line.startsWith('tick'));
  t.is(taskStatus(target.pid).tracerPid, 0);
  t.regex(readFileSync(`/proc/${target.pid}/status`, 'latin1'), /^Uid:\s+65534\s+0\s+0\s+0$/m, 'set-user-ID root now');
  t.is(await errnoOf(fsp.open(file, 'r')), 'EACCES');
  const logged = new RegExp(`^imgfs: open /${target.pid}/dump: process ${target.pid} was shown as uid 65534's and is uid 0's now`, 'm');
  t.regex(await mnt.stderrOnceMatching(logged), logged, 'one line, naming the file once');
  t.true(threadStatuses(target.pid).every(isReleased), 'let go at once');
  const from = target.lines().length;
  await target.waitForLine((line) => line.startsWith('tick'), { from });
  t.deepEqual(await probeAs(NOBODY, file), { open: 'EACCES' }, 'root\'s now, as the kernel checks too');
});

test.serial('a kernel thread has no dump, or one that fails with an errno; the mount survives', async (t) => {
  const other = await startTarget(t, 'counter');
  const mnt = await mountImgfs(t);
  const kthreadd = dumpOf(mnt.dir, 2);
  t.is((await fsp.readFile('/proc/2/comm', 'utf8')).trim(), 'kthreadd');
  const statErrno = await errnoOf(fsp.stat(kthreadd));
  if (statErrno !== undefined) {
    t.is(statErrno, 'ENOENT', 'no dump file for a kernel thread');
  } else {
    const errno = await errnoOf(readFileAsync(kthreadd));
    t.truthy(errno, 'opening or reading a kernel thread dump fails');
    t.log(`kernel thread dump fails with ${errno}`);
  }
  t.is(mnt.proc.exitCode, null, 'imgfs still runs');
  await assertMountServes(t, mnt, other);
});

test.serial('--no-freeze: as in the proposal, a running task\'s dump opens and its reads fail with EINVAL; once the task is stopped the same open file reads it, untraced, and it stays stopped', async (t) => {
  const target = await startTarget(t, 'counter');
  await target.waitForLine((line) => line.startsWith('tick'));
  const mnt = await mountImgfs(t, ['--no-freeze']);
  const file = dumpOf(mnt.dir, target.pid);
  t.is(await errnoOf(readFileAsync(file)), 'EINVAL', 'reading a running task');
  const handle = await openHeld(t, file);
  t.is(await errnoOf(readAt(handle, 0, PAGE_SIZE)), 'EINVAL', 'a read of the file opened while it runs');
  t.is(await errnoOf(readAt(handle, 0, PAGE_SIZE)), 'EINVAL', 'and the next');
  t.true(threadStatuses(target.pid).every(isReleased), 'the running task was not touched');
  const refused = new RegExp(`^imgfs: read /${target.pid}/dump: .*not stopped.*$`, 'gm');
  t.is((await mnt.stderrOnceMatching(refused)).match(refused)?.length, 1, 'refusals back to back are logged once');
  const lines = target.lines().length;
  await target.waitForLine((line) => line.startsWith('tick'), { from: lines });

  process.kill(target.pid, 'SIGSTOP');
  await waitUntil('the target to stop', () => taskStatus(target.pid).state === 'T');
  const size = (await handle.stat()).size;
  const bytes = await readAt(handle, 0, size + 1);
  t.is(bytes.length, size);
  // Registers are out of reach without ptrace: the task is seized for its snapshot only.
  t.deepEqual(threadStatuses(target.pid).map((status) => [status.state, status.tracerPid]), [['T', 0]], 'stopped, untraced, while open');
  assertImageMatchesProcess(t, parseImage(bytes), bytes, target.pid);
  await handle.close();

  await waitUntil('the dumper to let go', () => taskStatus(target.pid).tracerPid === 0);
  // Let go, the task passes through the kernel on its way back into its stop ('R' for a moment).
  await waitUntil('the target back in its stop', () => taskStatus(target.pid).state === 'T');
  const ticks = target.lines().length;
  await sleep(300);
  t.deepEqual(threadStatuses(target.pid).map((status) => [status.state, status.tracerPid]), [['T', 0]], 'still stopped after');
  t.is(target.lines().length, ticks, 'no tick while stopped');
});

test.serial('--no-freeze: a dump opened while its task ran, whose pid names another process by its first read, fails with EIO: never that process\'s memory', async (t) => {
  // The helper replaces its child, on SIGUSR1, with another process at the same pid (pattern).
  const helper = await startTarget(t, 'pidreuse', [await buildTarget('pattern')]);
  const pid = Number(helper.info[1]);
  await helper.waitForLine((line) => line.startsWith('ready '));
  const mnt = await mountImgfs(t, ['--no-freeze']);
  const file = dumpOf(mnt.dir, pid);
  const handle = await openHeld(t, file);
  const from = helper.lines().length;
  process.kill(helper.pid, 'SIGUSR1');
  await helper.waitForLine((line) => line.startsWith('ready '), { from });
  process.kill(pid, 'SIGSTOP');
  await waitUntil('the new process to stop', () => taskStatus(pid).state === 'T');
  t.is(await errnoOf(readAt(handle, 0, PAGE_SIZE)), 'EIO');
  t.regex(await mnt.stderrOnceMatching(/has exited/), new RegExp(`pid ${pid} has exited`));
  const bytes = await readFileAsync(file);
  assertImageMatchesProcess(t, parseImage(bytes), bytes, pid);
  process.kill(pid, 'SIGCONT');
});

test.serial('--no-freeze: fstat of a dump opened while its task ran, once the process has exited, is the size of the snapshot its first read took', async (t) => {
  const target = await startTarget(t, 'counter');
  await target.waitForLine((line) => line.startsWith('tick'));
  const mnt = await mountImgfs(t, ['--no-freeze']);
  const handle = await openHeld(t, dumpOf(mnt.dir, target.pid));
  process.kill(target.pid, 'SIGSTOP');
  await waitUntil('the target to stop', () => taskStatus(target.pid).state === 'T');
  const bytes = await readWhole(handle);
  t.is(parseImage(bytes).size, bytes.length);
  await killAndReap(target.proc);
  t.is((await handle.stat()).size, bytes.length);
});

/** A counter stopped (SIGSTOP) and its dump open on a --no-freeze mount. */
async function stoppedCounterDumpOpen(t: ExecutionContext) {
  const target = await startTarget(t, 'counter');
  await target.waitForLine((line) => line.startsWith('tick'));
  const mnt = await mountImgfs(t, ['--no-freeze']);
  const file = dumpOf(mnt.dir, target.pid);
  process.kill(target.pid, 'SIGSTOP');
  await waitUntil('the target to stop', () => taskStatus(target.pid).state === 'T');
  return { target, mnt, file, handle: await openHeld(t, file) };
}

test.serial('--no-freeze: a stopped task continued while its dump is open runs at once; the open file\'s reads then fail with EINVAL, a new open once it is stopped again works', async (t) => {
  const { target, mnt, file, handle } = await stoppedCounterDumpOpen(t);
  const head = await readAt(handle, 0, PAGE_SIZE);
  t.is(head.length, PAGE_SIZE);

  const from = target.lines().length;
  process.kill(target.pid, 'SIGCONT');
  await target.waitForLine((line) => line.startsWith('tick'), { from });
  t.is(await errnoOf(readAt(handle, PAGE_SIZE, PAGE_SIZE)), 'EINVAL', 'its memory may have changed since the snapshot');
  const logged = new RegExp(`pid ${target.pid} has run since its snapshot`);
  t.regex(await mnt.stderrOnceMatching(logged), logged);

  process.kill(target.pid, 'SIGSTOP');
  await waitUntil('the target to stop again', () => taskStatus(target.pid).state === 'T');
  const bytes = await readFileAsync(file);
  assertImageMatchesProcess(t, parseImage(bytes), bytes, target.pid);
  t.is(await errnoOf(readAt(handle, PAGE_SIZE, PAGE_SIZE)), 'EINVAL', 'the first open file keeps its snapshot, let go: still EINVAL');
  await handle.close();
  t.deepEqual(threadStatuses(target.pid).map((status) => [status.state, status.tracerPid]), [['T', 0]]);
  process.kill(target.pid, 'SIGCONT');
});

test.serial('--no-freeze: a sequential reader\'s next bytes, read ahead while the task was stopped, are EINVAL too once it has run', async (t) => {
  const { target, handle } = await stoppedCounterDumpOpen(t);
  // Two reads in a row make a streaming reader: the third is read ahead after the second's reply.
  t.is((await readAt(handle, 0, PAGE_SIZE)).length, PAGE_SIZE);
  t.is((await readAt(handle, PAGE_SIZE, PAGE_SIZE)).length, PAGE_SIZE);
  await sleep(200); // the read-ahead runs right after the reply, in the mount's process
  const from = target.lines().length;
  process.kill(target.pid, 'SIGCONT');
  await target.waitForLine((line) => line.startsWith('tick'), { from });
  t.is(await errnoOf(readAt(handle, 2 * PAGE_SIZE, PAGE_SIZE)), 'EINVAL', 'not the bytes read ahead');
});

test.serial('a process opening its own dump gets EBUSY within the freeze timeout and runs on', async (t) => {
  const mnt = await mountImgfs(t, ['--freeze-timeout', '1500']);
  const target = await startTarget(t, 'selfdump', [mnt.dir]);
  const result = await target.waitForLine((line) => line.startsWith('open '), { timeoutMs: 30_000 });
  t.is(result, 'open EBUSY');
  const lines = target.lines().length;
  await target.waitForLine((line) => line.startsWith('tick'), { from: lines });
  t.true(threadStatuses(target.pid).every(isReleased), 'left running and untraced');
  t.is(mnt.proc.exitCode, null, 'imgfs still runs');
});

test.serial('while one open waits for a thread that cannot stop, the mount serves everyone else', async (t) => {
  // The vfork parent sleeps uninterruptibly (state D) until its child exits, far past the timeout.
  const slow = await startTarget(t, 'native_vfork', ['30000']);
  const other = await startTarget(t, 'counter');
  await waitUntil('the vfork parent in state D', () => taskStatus(slow.pid).state === 'D');
  const mnt = await mountImgfs(t, ['--freeze-timeout', '5000']);
  let settled = false;
  const slowOpen = errnoOf(fsp.open(dumpOf(mnt.dir, slow.pid), 'r')).finally(() => (settled = true));
  await sleep(200);
  await assertMountServes(t, mnt, other);
  t.false(settled, 'answered while the other open was still waiting');
  t.is(await slowOpen, 'EBUSY');
  t.true(threadStatuses(slow.pid).every(isReleased), 'left untraced');
});

test.serial('opens that come while a freeze waits share its snapshot', async (t) => {
  // Its only thread cannot stop for its first 8 s (a loaded machine may take seconds to mount):
  // the first open's freeze waits until then.
  const target = await startTarget(t, 'native_vfork', ['8000']);
  await waitUntil('the vfork parent in state D', () => taskStatus(target.pid).state === 'D');
  const mnt = await mountImgfs(t, ['--freeze-timeout', '20000']);
  t.is(taskStatus(target.pid).state, 'D', 'still unable to stop when the mount is up');
  const file = dumpOf(mnt.dir, target.pid);
  const first = openHeld(t, file);
  await sleep(100);
  const [a, b] = await Promise.all([first, openHeld(t, file)]);
  const [bytesA, bytesB] = [await readWhole(a), await readWhole(b)];
  t.is(parseImage(bytesA).size, bytesA.length);
  t.true(bytesA.equals(bytesB), 'one snapshot');
  await a.close();
  await b.close();
  await waitUntil('the target to run on after the last close', () => threadStatuses(target.pid).every(isReleased));
});

test.serial('a process that maps a file of the mount itself is dumped without the mount asking itself', async (t) => {
  const other = await startTarget(t, 'counter');
  const mnt = await mountImgfs(t);
  // Started after the mount: its teardown runs first, so the mapping is gone before the FS stops.
  const mapper = await startTarget(t, 'mapmount', [path.join(mnt.dir, String(other.pid), 'core')]);
  const [, mapHex, mapBytes] = (await mapper.waitForLine((line) => line.startsWith('ready '))).split(' ');
  const [start, end] = [parseInt(mapHex, 16), parseInt(mapHex, 16) + Number(mapBytes)];

  // Pages of that mapping not in memory could only be read through a request to imgfs itself.
  const image = parseImage(await withTimeout(readFileAsync(dumpOf(mnt.dir, mapper.pid)), 60_000, 'reading the dump'));
  const mapping = image.vmas.find((v) => v.start === start)!;
  t.truthy(mapping, 'the mapping is a VMA of the dump');
  t.false(image.pages.some((p) => p.vaddr >= start && p.vaddr < end), 'none of its pages is read');

  // The kernel would take the first page of a mapping whose file starts with the ELF magic; with
  // mapped private memory in the filter, all of it. Here the core carries zeros, as for pages the
  // kernel cannot get.
  await fsp.writeFile(`/proc/${mapper.pid}/coredump_filter`, '0x37');
  const bytes = await withTimeout(readFileAsync(path.join(mnt.dir, String(mapper.pid), 'core')), 60_000, 'reading the core');
  const load = loadAt(parseElfCore(bytes), start)!;
  t.is(Number(load.filesz), end - start);
  t.true(loadBytes(bytes, load).every((b) => b === 0), 'zeros');
  await assertMountServes(t, mnt, other);
});

test.serial('imgfs killed with SIGKILL while a dump is open leaves the target running and untraced', async (t) => {
  const target = await startTarget(t, 'counter');
  await target.waitForLine((line) => line.startsWith('tick'));
  const mnt = await mountImgfs(t);
  const handle = await fsp.open(dumpOf(mnt.dir, target.pid), 'r');
  t.teardown(() => handle.close().catch(() => undefined));
  t.true(threadStatuses(target.pid).every((status) => status.state === 't'), 'frozen while open');

  mnt.proc.kill('SIGKILL');
  await waitForExit(mnt.proc);
  await waitUntil('the target to be untraced', () => threadStatuses(target.pid).every(isReleased));
  const lines = target.lines().length;
  await target.waitForLine((line) => line.startsWith('tick'), { from: lines });
  t.pass('the counter advances');

  // ENOTCONN once the server is gone; ECONNABORTED if the connection was also aborted by hand.
  t.true(['ENOTCONN', 'ECONNABORTED'].includes((await errnoOf(fsp.readdir(mnt.dir)))!), 'the dead mount is stale until cleaned');
  await handle.close().catch(() => undefined);
  await run('fusermount', ['-uz', mnt.dir]);
  t.is(await mountEntry(mnt.dir), undefined);
});

/** The promise's value, or a rejection naming what hung. */
function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} hung for ${ms} ms`)), ms); });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

test.serial('SIGUSR1 opens no debugger in the mount (a root process); SIGHUP, as from a closed terminal, lets the frozen target go and unmounts', async (t) => {
  const target = await startTarget(t, 'counter');
  await target.waitForLine((line) => line.startsWith('tick'));
  const mnt = await mountImgfs(t);
  mnt.proc.kill('SIGUSR1');
  await sleep(300);
  t.false(mnt.stderr().includes('Debugger'), mnt.stderr());
  t.true((await fsp.readdir(mnt.dir)).includes(String(target.pid)), 'it serves on');

  const handle = await fsp.open(dumpOf(mnt.dir, target.pid), 'r');
  t.teardown(() => handle.close().catch(() => undefined));
  mnt.proc.kill('SIGHUP');
  await waitForExit(mnt.proc);
  t.is(mnt.proc.exitCode, 0);
  t.true(threadStatuses(target.pid).every(isReleased), 'the target runs on, untraced');
  await waitUntil('the mount gone', async () => (await mountEntry(mnt.dir)) === undefined);
  t.pass();
});

test.serial('a process that exits while its files are looked up or opened is ENOENT, as any process that does not exist', async (t) => {
  const mnt = await mountImgfs(t);
  const seen = new Map<string, number>();
  const note = (what: string) => seen.set(what, (seen.get(what) ?? 0) + 1);
  for (let i = 0; i < 150; i++) {
    const short = spawn('sleep', [String(0.01 + (i % 5) * 0.01)], { stdio: 'ignore' });
    t.teardown(() => killAndReap(short));
    const pid = short.pid!;
    const exited = waitForExit(short);
    let running = true;
    void exited.then(() => { running = false; });
    // Lookups over and over while it runs and ends: the window where its /proc files answer ESRCH.
    const lookups = async (name: string) => {
      while (running) {
        note(`stat ${name} ${(await errnoOf(fsp.stat(path.join(mnt.dir, String(pid), name)))) ?? 'ok'}`);
        note(`readdir ${(await errnoOf(fsp.readdir(path.join(mnt.dir, String(pid))))) ?? 'ok'}`);
      }
    };
    await Promise.all([lookups('dump'), lookups('core'), ...['dump', 'core'].map(async (name) => {
      const file = path.join(mnt.dir, String(pid), name);
      note(`stat ${name} ${(await errnoOf(fsp.stat(file))) ?? 'ok'}`);
      const opened = await fsp.open(file, 'r').catch((err: NodeJS.ErrnoException) => err.code!);
      if (typeof opened === 'string') return note(`open ${name} ${opened}`);
      note(`read ${name} ${(await errnoOf(opened.read(Buffer.alloc(1), 0, 1, 0))) ?? 'ok'}`);
      await opened.close();
    })]);
    await exited;
  }
  const allowed = /^(stat \w+ (ok|ENOENT)|readdir (ok|ENOENT)|open \w+ (ok|ENOENT)|read \w+ (ok|EIO))$/;
  t.deepEqual([...seen.keys()].filter((what) => !allowed.test(what)), [], `${JSON.stringify([...seen])} ${mnt.stderr()}`);
});
