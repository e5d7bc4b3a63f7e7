// Round trips: real C targets, dumped through a real mount, killed, and restored by the CLI from
// the image file. The restored process must go on from where the dump froze it: its counters,
// heap, thread-locals, vector registers, file mappings and threads as they were.

import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { promises as fsp, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { decodeExtension, encodeExtension } from '../src/extension.js';
import { parseImage } from './helpers/image.js';
import { mountImgfs } from './helpers/mount.js';
import { buildTarget } from './helpers/build.js';
import { makeTempDir } from './helpers/files.js';
import { readMaps, readMem, taskStatus } from './helpers/groundtruth.js';
import { continuesCount, dumpToFile, imageWord, killOriginal, numbersOf, readImageExtension, showText, startRestorer, type Restorer } from './helpers/restore.js';
import { killAndReap, killAtTeardown, startSleepWithChild, startTarget, type Target } from './helpers/targets.js';
import { runOk } from './helpers/run.js';
import { sleep, waitUntil } from './helpers/wait.js';
import { testAtMostAtOnce } from './helpers/slots.js';

const test = testAtMostAtOnce(4);

const isTick = (line: string) => line.startsWith('tick ');
const procState = (pid: number) => taskStatus(pid).state;

/** restore_filemap mapping a file in a fresh directory, dumped there and killed. */
async function dumpedFileMapping(t: ExecutionContext) {
  const dir = await makeTempDir(t);
  const file = path.join(dir, 'mapped.bin');
  const target = await startTarget(t, 'restore_filemap', [file]);
  const [mapAt, sum] = [parseInt(target.info[1], 16), target.info[2]];
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);
  return { file, mapAt, sum, image };
}

/** The vector loop's next three rounds after a restore each found its registers intact. */
async function threeRoundsOk(t: ExecutionContext, restorer: Restorer): Promise<void> {
  const rounds = [];
  for (let i = 0; i < 3; i++) rounds.push(await restorer.waitForLine((line) => line.startsWith('round '), { from: i }));
  for (const round of rounds) t.regex(round, / ok$/);
}

test('a counter goes on from the value it had when it was dumped, not from zero', async (t) => {
  const target = await startTarget(t, 'counter');
  await target.waitForLine((line) => line === 'tick 3');
  const image = await dumpToFile(t, target);
  const layout = (pid: number) => readMaps(pid).map(({ start, end, perms, offset, name }) => ({ start, end, perms, offset, name }));
  const before = layout(target.pid);
  await killOriginal(target);
  const counterAt = parseInt(target.info[1], 16);
  const dumped = await imageWord(image, counterAt);

  const restorer = startRestorer(t, [image]);
  const first = numbersOf(await restorer.waitForLine(isTick))[0];
  t.is(first, Number(dumped) + 1, `the image holds counter ${dumped}`);
  const later = numbersOf(await restorer.waitForLine((line) => isTick(line) && numbersOf(line)[0] >= first + 3))[0];
  t.is(later, first + 3);
  const pid = await restorer.restoredPid();
  t.is(pid, target.pid, 'the dumped pid, free again, is taken back');
  t.is(readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 'counter');
  t.is(await fsp.readlink(`/proc/${pid}/exe`), await fsp.realpath(target.binary));
  t.deepEqual(layout(pid), before, 'the same mappings: addresses, protections, files, [heap], [stack], [vdso]');
});

test('a task dumped while stopped (SIGSTOP) is restored stopped, and goes on from its value once continued', async (t) => {
  const target = await startTarget(t, 'counter');
  await target.waitForLine((line) => line === 'tick 2');
  process.kill(target.pid, 'SIGSTOP');
  await waitUntil('the target to stop', () => procState(target.pid) === 'T');
  // The tick it printed before the stop may still be in the pipe: what counts is the counter.
  const stoppedAt = Number(readMem(target.pid, parseInt(target.info[1], 16), 8).readBigUInt64LE(0));
  const image = await dumpToFile(t, target);
  await waitUntil('imgfs to let the target go', () => taskStatus(target.pid).tracerPid === 0);
  // Let go, the task passes through the kernel on its way back into its group stop ('R' for a
  // moment), without running an instruction of its own.
  await waitUntil('the target back in its stop', () => procState(target.pid) === 'T', 2000);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(procState(target.pid), 'T', 'still stopped after the dump');
  t.deepEqual(target.lines().filter((line) => isTick(line) && numbersOf(line)[0] > stoppedAt), [], 'it printed nothing');
  await killOriginal(target);
  const dumped = await imageWord(image, parseInt(target.info[1], 16));
  t.regex(await showText(image), /stopped \(SIGSTOP\) when dumped/);

  const restorer = startRestorer(t, ['--detach', image]);
  const pid = await restorer.restoredPid();
  t.is(await restorer.exited, 0, restorer.stderr());
  t.is(procState(pid), 'T', 'restored stopped');
  // Its own session: a process group the restorer left behind with a stopped process in it would
  // be orphaned, and the kernel would end it with SIGHUP.
  t.is(readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ')[3], String(pid), 'a session of its own');
  const before = restorer.lines().length;
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.is(restorer.lines().length, before, 'nothing printed while stopped');
  process.kill(pid, 'SIGCONT');
  const first = numbersOf(await restorer.waitForLine(isTick, { from: before }))[0];
  t.true(continuesCount(first, Number(dumped)), `tick ${first} after ${dumped}`);
});

test('a v0 image (--strict-v0, no extension) restores what it describes and says what it could not', async (t) => {
  const target = await startTarget(t, 'counter');
  await target.waitForLine((line) => line === 'tick 2');
  const image = await dumpToFile(t, target, undefined, ['--strict-v0']);
  await killOriginal(target);
  const dumped = await imageWord(image, parseInt(target.info[1], 16));

  const restorer = startRestorer(t, [image]);
  const first = numbersOf(await restorer.waitForLine(isTick))[0];
  t.true(continuesCount(first, Number(dumped)), `tick ${first} after ${dumped}`);
  const notRestored = /warning: the image has no extension: other threads, FPU state, signal handlers, open files and the working directory are not restored\n/;
  t.regex(await restorer.stderrOnceMatching(notRestored), notRestored);
  t.regex(restorer.stderr(), /warning: the image has no extension: \d+ file-backed VMAs hold only their dumped pages/);
});

test('heap contents, a thread-local and a working brk come back', async (t) => {
  const target = await startTarget(t, 'restore_state');
  await target.waitForLine((line) => line.startsWith('state 2 '));
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  const [tlsAt, heapSum] = [parseInt(target.info[1], 16), target.info[2]];
  const dumpedTicks = Number(await imageWord(image, tlsAt));

  const restorer = startRestorer(t, [image]);
  const line = await restorer.waitForLine((l) => l.startsWith('state '));
  const [ticks, , brkOk] = numbersOf(line);
  // Frozen in its nanosleep, the next tick it prints is one more than the dumped count; frozen
  // between the count and its line (the checksum takes a while), the dumped count itself.
  t.true(ticks === dumpedTicks + 1 || ticks === dumpedTicks, `${line} after ${dumpedTicks} ticks`);
  t.is(line.split(' ')[2], heapSum, 'heap checksum');
  t.is(brkOk, 1, 'sbrk grows and shrinks the restored heap');
});

test('values held in xmm and ymm registers survive a dump in the middle of the loop using them', async (t) => {
  const target = await startTarget(t, 'restore_vector');
  await target.waitForLine((line) => line === 'round 2 ok');
  const image = await dumpToFile(t, target);
  await killOriginal(target);

  const restorer = startRestorer(t, [image]);
  await threeRoundsOk(t, restorer);
});

test('FPU state dumped on a CPU with another XSAVE layout (AVX-512): xmm and ymm values still survive', async (t) => {
  const target = await startTarget(t, 'restore_vector');
  await target.waitForLine((line) => line === 'round 2 ok');
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  // Every thread's area as such a CPU saves it: 2696 bytes, XCR0 x87|SSE|AVX|opmask|ZMM, state
  // in all of them; the AVX-512 bytes are noise that must not reach this CPU.
  const bytes = await fsp.readFile(image);
  const end = parseImage(bytes).end;
  const ext = decodeExtension(bytes.subarray(end), end);
  for (const thread of ext.threads) {
    const foreign = Buffer.alloc(2696, 0x5a);
    thread.xstate!.copy(foreign, 0, 0, 832);
    foreign.writeBigUInt64LE(0xe7n, 464);
    foreign.writeBigUInt64LE(foreign.readBigUInt64LE(512) | 0xe0n, 512);
    thread.xstate = foreign;
  }
  await fsp.writeFile(image, Buffer.concat([bytes.subarray(0, end), encodeExtension(ext)]));

  const restorer = startRestorer(t, [image]);
  await threeRoundsOk(t, restorer);
  const reset = /warning: the image's FPU state comes from a CPU with another XSAVE layout: x87, SSE and AVX registers restored, features 0xe0 reset/;
  t.regex(await restorer.stderrOnceMatching(reset), reset);
});

test('a private file mapping: modified pages from the image, untouched ones from the file, at the same address', async (t) => {
  const { file, mapAt, sum, image } = await dumpedFileMapping(t);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  const mapping = readMaps(pid).find((entry) => entry.start === mapAt);
  t.is(mapping?.name, file);
  t.is(mapping?.perms, 'rw-p');
  process.kill(pid, 'SIGUSR1'); // the target's own handler, restored, starts its loop
  const line = await restorer.waitForLine((l) => l.startsWith('map '));
  t.is(line, `map ${sum} modified-page-1`);
});

test('a mapped file replaced by a copy with its timestamps (another machine, a backup): mapped from the copy', async (t) => {
  const { file, mapAt, sum, image } = await dumpedFileMapping(t);
  const before = await fsp.stat(file, { bigint: true });
  await runOk('cp', ['--preserve=timestamps', file, `${file}.copy`]);
  await fsp.rename(`${file}.copy`, file);
  const after = await fsp.stat(file, { bigint: true });
  t.not(after.ino, before.ino);
  t.is(after.mtimeNs, before.mtimeNs);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  const mapping = readMaps(pid).find((entry) => entry.start === mapAt);
  t.is(mapping?.name, file);
  t.is(mapping?.inode, Number(after.ino), 'the copy is what is mapped');
  process.kill(pid, 'SIGUSR1');
  t.is(await restorer.waitForLine((l) => l.startsWith('map ')), `map ${sum} modified-page-1`);
  t.notRegex(restorer.stderr(), /mapped\.bin/, 'no warning about the file');
});

test('a file mapped by the dump that changed since: an error naming it, or anonymous memory with --anon-fallback', async (t) => {
  const { file, image } = await dumpedFileMapping(t);
  await fsp.appendFile(file, 'grown');

  const failed = startRestorer(t, [image]);
  t.is(await failed.exited, 1);
  t.regex(failed.stderr(), new RegExp(`^imgfs restore: .*${file}: changed since the dump .*--anon-fallback.*\\n$`));
  t.is(failed.stderr().split('\n').length, 2, 'one line');

  const fallback = startRestorer(t, [image, '--anon-fallback']);
  const pid = await fallback.restoredPid();
  // Written before the process runs, the warning may still be in the pipe when we see it run.
  await waitUntil('the warning', () => fallback.stderr().includes('warning: '));
  t.regex(fallback.stderr(), new RegExp(`warning: ${file}: changed since the dump .*anonymous`));
  process.kill(pid, 'SIGUSR1');
  // Untouched pages were neither dumped nor mapped from the file: they read as zeros now.
  t.regex(await fallback.waitForLine((l) => l.startsWith('map ')), / modified-page-1$/);
});

/** restore_fds dumped, its original killed: the image, the file it has open at fd 30, its working directory. */
async function dumpedFds(t: ExecutionContext): Promise<{ image: string; file: string; cwd: string }> {
  const dir = await makeTempDir(t);
  const file = path.join(dir, 'data.txt');
  const cwd = path.join(dir, 'work');
  await fsp.mkdir(cwd);
  const target = await startTarget(t, 'restore_fds', [file, cwd]);
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);
  return { image, file, cwd };
}

test('open files come back at their number and offset, the working directory too, a pipe and a socket pair with both ends too; a packet socket becomes /dev/null', async (t) => {
  const { image, file, cwd } = await dumpedFds(t);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  process.kill(pid, 'SIGUSR1');
  t.regex(await restorer.waitForLine((l) => l.startsWith('fds ')), new RegExp(`^fds 10 ${cwd} pipe:\\[\\d+\\] socket:\\[\\d+\\] /dev/null$`));
  t.is(await fsp.readFile(file, 'utf8'), 'hellomore\n', 'written at the dumped offset');
  t.notRegex(restorer.stderr(), /fd 3[0-4] /, 'the file is the one of the dump: no word of it');
  const replaced = /warning: fd 35 \(socket:\[\d+\]\): a socket cannot be restored: replaced by \/dev\/null\n/;
  t.regex(await restorer.stderrOnceMatching(replaced), replaced);
});

test('a named FIFO (mkfifo) the process reads commands from is opened again by its path: the restored daemon reads the next command', async (t) => {
  const dir = await makeTempDir(t);
  const fifo = path.join(dir, 'ctl');
  await runOk('mkfifo', [fifo]);
  const target = await startTarget(t, 'restore_fifo', [fifo]);
  await fsp.writeFile(fifo, 'one\n');
  await target.waitForLine((line) => line === 'cmd one');
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  t.is(readlinkSync(`/proc/${pid}/fd/3`), fifo);
  await fsp.writeFile(fifo, 'two\n');
  await restorer.waitForLine((line) => line === 'cmd two');
  t.false(restorer.lines().some((line) => line.startsWith('error')), 'no end of file, no error');
  t.false(restorer.stderr().includes(fifo), restorer.stderr());
});

test('an open file whose path leads to another file now (replaced since the dump): reopened with a warning saying so', async (t) => {
  const { image, file } = await dumpedFds(t);
  await fsp.rm(file);
  await fsp.writeFile(file, 'other\n');

  const restorer = startRestorer(t, [image]);
  await restorer.restoredPid();
  await waitUntil('the warnings', () => restorer.stderr().includes('fd 36 '));
  t.regex(restorer.stderr(), new RegExp(`warning: fd 30 \\(${file}\\): changed since the dump \\(size 5 -> 6\\): reopened as it is now, at offset 5\n`));
  t.regex(restorer.stderr(), new RegExp(`warning: fd 36 \\(${file}\\): changed since the dump \\(size 5 -> 6\\): reopened as it is now, appending at its end\n`));
});

test('a pipe another process wrote into comes back as one whose writer has gone: it reads the end, and epoll watches it again', async (t) => {
  const target = await startTarget(t, 'restore_pipein');
  const writer = Number(target.info[1]);
  killAtTeardown(t, writer);
  const image = await dumpToFile(t, target);
  await killOriginal(target);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  process.kill(pid, 'SIGUSR1');
  await restorer.waitForLine((line) => line === 'done');
  const EPOLLHUP = 0x10;
  t.is(restorer.lines().find((line) => line.startsWith('epoll ')), `epoll 1 40 ${EPOLLHUP.toString(16)}`, 'epoll watches it, and reports its writer gone');
  t.is(restorer.lines().find((line) => line.startsWith('read ')), 'read 0 0', 'the end of the pipe');
  t.is(readlinkSync(`/proc/${pid}/fd/41`), readlinkSync(`/proc/${pid}/fd/40`), 'fd 41 is fd 40 dup\'d, as it was');
  const warnings = restorer.stderr().split('\n').filter((line) => line.includes('warning: fd 4'));
  t.is(warnings.length, 1, restorer.stderr());
  t.regex(warnings[0], /warning: fd 40 \(pipe:\[\d+\]\): its write end is another process's: it comes back as a pipe whose writer has gone \(reads end\)$/);
});

// --live: the same, from an image read while the process ran on (its copy of the instant).
for (const options of [[], ['--live']]) {
  test(`every thread continues: spinning ones and ones dumped inside nanosleep, each with its thread-local${options.length ? ` (dumped ${options.join(' ')})` : ''}`, async (t) => {
    const target = await startTarget(t, 'restore_threads');
    await target.waitForLine((line) => line.startsWith('counts '), { from: 2 });
    const image = await dumpToFile(t, target, undefined, options);
    await killOriginal(target);
    const slotsAt = parseInt(target.info[1], 16);
    const dumped = await Promise.all([0, 1, 2, 3].map(async (i) => Number(await imageWord(image, slotsAt + 8 * i))));

    const restorer = startRestorer(t, [image]);
    const pid = await restorer.restoredPid();
    const first = numbersOf(await restorer.waitForLine((l) => l.startsWith('counts ')));
    const later = numbersOf(await restorer.waitForLine((l) => l.startsWith('counts '), { from: restorer.lines().length + 2 }));
    for (let i = 0; i < 4; i++) {
      t.true(first[i] >= dumped[i], `thread ${i} starts from its dumped count ${dumped[i]}: ${first[i]}`);
      t.true(later[i] > first[i], `thread ${i} runs on: ${first[i]} -> ${later[i]}`);
    }
    t.is(later[4], 1, 'each thread sees its own thread-local');
    t.is((await fsp.readdir(`/proc/${pid}/task`)).length, 5);
  });
}

test('a process whose main thread had exited (pthread_exit) comes back as the threads it ran, counting on', async (t) => {
  const target = await startTarget(t, 'leader_exit');
  await waitUntil('the main thread to be a zombie', () => procState(target.pid) === 'Z');
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  const slotsAt = parseInt(target.info[1], 16);
  const dumped = await Promise.all([0, 1].map(async (i) => Number(await imageWord(image, slotsAt + 8 * i))));

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  const first = numbersOf(await restorer.waitForLine((l) => l.startsWith('counts ')));
  const later = numbersOf(await restorer.waitForLine((l) => l.startsWith('counts '), { from: restorer.lines().length + 2 }));
  for (let i = 0; i < 2; i++) {
    t.true(first[i] >= dumped[i], `thread ${i} starts from its dumped count ${dumped[i]}: ${first[i]}`);
    t.true(later[i] > first[i], `thread ${i} runs on: ${first[i]} -> ${later[i]}`);
  }
  t.is((await fsp.readdir(`/proc/${pid}/task`)).length, 2, 'two threads, the first one now the leader');
});

test('the dumpable mode is dumped as the process set it, also for root\'s processes, and comes back so', async (t) => {
  const dumpableMode = async (image: string) => parseImage(await fsp.readFile(image)).mm.flags & 3n;
  const counter = await startTarget(t, 'counter');
  t.is(await dumpableMode(await dumpToFile(t, counter)), 1n, 'a process of root: dumpable');
  const target = await startTarget(t, 'nondumpable');
  const image = await dumpToFile(t, target);
  t.is(await dumpableMode(image), 0n, 'one of root that made itself non-dumpable: not dumpable');
  await killOriginal(target);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  const mnt = await mountImgfs(t);
  t.is(await dumpableMode(path.join(mnt.dir, String(pid), 'dump')), 0n, 'restored, and dumped again: still not dumpable');
});

test('--new-pid: pthread_kill reaches a restored thread under its new tid (glibc cached the old one)', async (t) => {
  const target = await startTarget(t, 'restore_tidcache');
  const workerTid = Number(target.info[2]);
  process.kill(target.pid, 'SIGUSR2');
  t.is(await target.waitForLine((l) => l.startsWith('kill ')), 'kill 0');
  t.is(await target.waitForLine((l) => l.startsWith('usr1 ')), `usr1 ${workerTid}`);
  const image = await dumpToFile(t, target);
  await killOriginal(target);

  const restorer = startRestorer(t, [image, '--new-pid']);
  const pid = await restorer.restoredPid();
  t.not(pid, target.pid);
  const tids = (await fsp.readdir(`/proc/${pid}/task`)).map(Number);
  const worker = tids.find((tid) => tid !== pid);
  t.not(worker, workerTid, 'the worker has a new tid');
  process.kill(pid, 'SIGUSR2');
  t.is(await restorer.waitForLine((l) => l.startsWith('kill ')), 'kill 0', 'pthread_kill found the thread (not ESRCH)');
  t.is(await restorer.waitForLine((l) => l.startsWith('usr1 ')), `usr1 ${worker}`);
});

test('an image of sleep, the very program the restorer\'s stub runs, restores', async (t) => {
  // The stub's executable is then mapped by the image: the kernel would refuse to set it again.
  const sleeper = spawn('sleep', ['1000'], { stdio: 'ignore' });
  t.teardown(() => killAndReap(sleeper));
  await new Promise((resolve, reject) => {
    sleeper.once('spawn', resolve);
    sleeper.once('error', reject);
  });
  const exe = await fsp.realpath(`/proc/${sleeper.pid}/exe`);
  const image = await dumpToFile(t, { pid: sleeper.pid! } as Target);
  await killAndReap(sleeper);

  const restorer = startRestorer(t, [image, '--detach']);
  const pid = await restorer.restoredPid();
  t.is(await restorer.exited, 0, restorer.stderr());
  t.is(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), 'sleep\u00001000\u0000');
  t.is(await fsp.realpath(`/proc/${pid}/exe`), exe);
  t.regex(readFileSync(`/proc/${pid}/stat`, 'utf8'), /^\d+ \(sleep\) S /, 'asleep again, not dead');
});

test('a process with a child: the image names the child, the restore says it is not brought back', async (t) => {
  const { parent, child } = await startSleepWithChild(t);
  const image = await dumpToFile(t, { pid: parent.pid! } as Target);
  await killAndReap(parent);

  t.deepEqual((await readImageExtension(image)).children, [child]);
  t.regex(await showText(image), new RegExp(`\nchildren at the dump \\(not restored\\): ${child}\n`));
  const restorer = startRestorer(t, [image, '--detach']);
  await restorer.restoredPid();
  t.is(await restorer.exited, 0);
  t.regex(restorer.stderr(), new RegExp(`imgfs restore: warning: the process had 1 child process at the dump \\(pid ${child}\\): not restored, a wait for it finds none\n`));
});

test('calls dumped inside a timed wait (poll, nanosleep) wait again after the restore instead of failing with EINTR', async (t) => {
  // Their restart block stays with the original task: restart_syscall would fail in the new one.
  const target = await startTarget(t, 'restore_restart');
  await target.waitForLine((line) => line.startsWith('tick 3 '));
  const image = await dumpToFile(t, target);
  await killOriginal(target);

  const restorer = startRestorer(t, [image]);
  const first = numbersOf(await restorer.waitForLine(isTick));
  const later = numbersOf(await restorer.waitForLine((line) => isTick(line) && numbersOf(line)[0] >= first[0] + 3));
  t.deepEqual([first[1], later[1]], [0, 0], 'no call failed, in either thread');
});

test('standard output and error on one open file (`> log 2>&1`) go on sharing its offset: no line overwrites another', async (t) => {
  const dir = await makeTempDir(t);
  const log = path.join(dir, 'both.log');
  const file = await fsp.open(log, 'w');
  const writer = spawn(await buildTarget('restore_dupout'), [], { stdio: ['ignore', file.fd, file.fd] });
  t.teardown(() => killAndReap(writer));
  await file.close(); // the writer has its own
  const lines = async () => (await fsp.readFile(log, 'latin1')).split('\n').filter(Boolean);
  await waitUntil('a few lines in the file', async () => (await lines()).length >= 6);
  const image = await dumpToFile(t, { pid: writer.pid! } as Target);
  await killAndReap(writer);
  const fds = (await readImageExtension(image)).fds;
  t.is(fds.find((fd) => fd.fd === 2)?.sharesWith, 1, 'the image says fd 2 is fd 1\'s open file');
  const dumped = (await lines()).length;

  startRestorer(t, [image]);
  await waitUntil('the restored writer to write on into the file', async () => (await lines()).length >= dumped + 10);
  const all = await lines();
  const expected = all.map((_, i) => `${i % 2 === 0 ? 'out' : 'err'} ${Math.floor(i / 2)}`);
  t.deepEqual(all, expected, 'every line once, in turn, none overwritten');
});

/** The counter with its standard output redirected to out.log in a fresh directory (`> out.log`). */
async function counterWritingToFile(t: ExecutionContext) {
  const log = path.join(await makeTempDir(t), 'out.log');
  const out = await fsp.open(log, 'w');
  const counter = spawn(await buildTarget('counter'), [], { stdio: ['ignore', out.fd, 'ignore'] });
  t.teardown(() => killAndReap(counter));
  await out.close(); // the counter has its own
  return { log, counter };
}

test('a standard stream redirected to a file that is gone since: /dev/null with a warning, not the restorer\'s', async (t) => {
  const { log, counter } = await counterWritingToFile(t);
  await waitUntil('the counter to tick into its file', async () => (await fsp.readFile(log, 'utf8')).includes('tick'));
  const image = await dumpToFile(t, { pid: counter.pid! } as Target);
  await killAndReap(counter);
  await fsp.rm(log);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  t.is(await fsp.readlink(`/proc/${pid}/fd/1`), '/dev/null');
  const warning = new RegExp(`warning: fd 1 \\(${log}\\): its file no longer exists: replaced by /dev/null\n`);
  await waitUntil('its warning', () => warning.test(restorer.stderr()));
  await sleep(300);
  t.deepEqual(restorer.lines(), [], 'nothing on the restorer\'s standard output');
});

test('a file opened with O_TMPFILE (as Python\'s tempfile.TemporaryFile opens them) comes back with its bytes and offset', async (t) => {
  const dir = await makeTempDir(t);
  const target = await startTarget(t, 'restore_tmpfile', [dir]);
  await target.waitForLine((line) => line.startsWith('at '));
  const image = await dumpToFile(t, target);
  await killOriginal(target);

  const restorer = startRestorer(t, [image]);
  await restorer.restoredPid();
  t.is(await restorer.waitForLine((line) => line.startsWith('at ')), 'at 13 unnamed-bytes');
  t.false(restorer.stderr().includes(dir), restorer.stderr());
});

test('a standard stream redirected to a file goes on into that file, not to the restorer', async (t) => {
  const { log, counter } = await counterWritingToFile(t);
  const ticks = async () => (await fsp.readFile(log, 'utf8')).split('\n').filter(isTick).map((line) => numbersOf(line)[0]);
  await waitUntil('the counter to tick 3 times into its file', async () => (await ticks()).length >= 3);
  const image = await dumpToFile(t, { pid: counter.pid! } as Target);
  await killAndReap(counter);
  const dumped = (await ticks()).length;

  const restorer = startRestorer(t, [image]);
  await waitUntil('the restored counter to tick on into the file', async () => (await ticks()).length >= dumped + 3);
  const all = await ticks();
  t.deepEqual(all, all.map((_, i) => i + 1), 'one file, every tick once, in order: the offset came back too');
  t.deepEqual(restorer.lines(), [], 'nothing on the restorer\'s standard output');
});
