// The ways to run a restore: from a pipe, detached, in the foreground (exit status, signals),
// twice from one image, with the original pid, and by executing the image (binfmt_misc).

import test from 'ava';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, promises as fsp, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { binfmtMain } from '../src/binfmt.js';
import { buildTarget } from './helpers/build.js';
import { repoRoot } from './helpers/mount.js';
import { run, runOk } from './helpers/run.js';
import { makeTempDir } from './helpers/files.js';
import { continuesCount, dumpToFile, imageWord, killOriginal, numbersOf, readImageExtension, startRestorer, stubsOf } from './helpers/restore.js';
import { taskStatus } from './helpers/groundtruth.js';
import { killAndReap, killAtTeardown, startSleepWithChild, startTarget, type Target } from './helpers/targets.js';
import { sleep, waitUntil } from './helpers/wait.js';

const isTick = (line: string) => line.startsWith('tick ');
const imgfs = path.join(repoRoot, 'bin', 'imgfs');

async function dumpedCounter(t: import('ava').ExecutionContext) {
  const target = await startTarget(t, 'counter');
  await target.waitForLine((line) => line === 'tick 2');
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  return { target, image, dumped: Number(await imageWord(image, parseInt(target.info[1], 16))) };
}

test('from a pipe: `imgfs restore -` reads the image from standard input', async (t) => {
  const { image, dumped } = await dumpedCounter(t);
  const restorer = startRestorer(t, ['-'], { stdinFile: image });
  const first = numbersOf(await restorer.waitForLine(isTick))[0];
  t.true(continuesCount(first, dumped), `tick ${first} after ${dumped}`);
  const pid = await restorer.restoredPid();
  t.is(await fsp.readlink(`/proc/${pid}/fd/0`), '/dev/null', 'the image pipe is not handed on');
});

/**
 * `imgfs restore -` fed half an image (the VMAs and some pages) through a pipe that stays open:
 * its writer has stalled, as an ssh link that hangs does, and the restore cannot finish.
 */
async function stalledRestore(t: import('ava').ExecutionContext) {
  const target = await startTarget(t, 'pattern', ['16']);
  const bytes = await fsp.readFile(await dumpToFile(t, target));
  await killOriginal(target);
  const proc = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', 'restore', '-'], { cwd: repoRoot, stdio: ['pipe', 'ignore', 'pipe'] });
  t.teardown(() => killAndReap(proc));
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  proc.stdin!.on('error', () => undefined);
  proc.stdin!.write(bytes.subarray(0, bytes.length >> 1));
  return { proc, stderr: () => stderr };
}

test('from a pipe that stalls mid-image: SIGINT ends the restore at once, saying so, and the restorer dies of it (a script running it stops); no stub is left', async (t) => {
  const { proc, stderr } = await stalledRestore(t);
  const exited = new Promise<string | null>((resolve) => proc.on('close', (_code, signal) => resolve(signal)));
  await waitUntil('the stub', () => stubsOf(proc.pid!).length > 0 || proc.exitCode !== null);
  await sleep(300);
  proc.kill('SIGINT');
  const signal = await Promise.race([exited, sleep(5000).then(() => 'still running')]);
  t.is(signal, 'SIGINT', `the restorer ends (stderr: ${stderr()})`);
  t.is(stderr(), 'imgfs restore: -: interrupted by SIGINT\n');
  t.deepEqual(stubsOf(proc.pid!), [], 'no stub left');
});

test('a restorer killed (SIGKILL) the moment it has started its stub: the stub dies with it', async (t) => {
  // However late the kill comes, the restore is not done (a restored process outlives its
  // restorer, as it should).
  const { proc } = await stalledRestore(t);
  const childOf = (pid: number) => {
    try {
      return Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0]) || undefined;
    } catch {
      return undefined;
    }
  };
  // As soon as it is there, before the restorer has taken it over.
  const stub = await waitUntil('the stub', () => childOf(proc.pid!), 30_000, 1);
  proc.kill('SIGKILL');
  killAtTeardown(t, stub!);
  await waitUntil(`the stub (pid ${stub}) to die`, () => {
    try {
      return taskStatus(stub!).state === 'Z';
    } catch {
      return true;
    }
  }, 5000);
  t.pass();
});

test('--same-pid while the dumped process, killed, waits for its parent to reap it: the error says so', async (t) => {
  const { parent, child } = await startSleepWithChild(t);
  const image = await dumpToFile(t, { pid: child } as Target);
  process.kill(child, 'SIGKILL');
  await waitUntil('the child to be a zombie', () => taskStatus(child).state === 'Z');
  const restorer = startRestorer(t, [image, '--same-pid']);
  t.is(await restorer.exited, 1);
  t.is(restorer.stderr(), `imgfs restore: ${image}: pid ${child} is held by a process that has exited (sleep) and that its parent, pid ${parent.pid} (sleep), has not reaped yet: --same-pid cannot restore it\n`);
});

test('usage errors: exit 2, one line saying the problem', async (t) => {
  for (const [args, problem] of [[['x.img', '--same-pid', '--new-pid'], '--same-pid and --new-pid exclude each other'], [['x.img', '--bogus'], "unknown option '--bogus'"], [[], 'no image given'], [['x.img', 'now'], "'now' after the image 'x.img': one image at a time, and no arguments for it"]] as const) {
    const result = await run(imgfs, ['restore', ...args]);
    t.is(result.code, 2);
    t.is(result.stderr, `imgfs restore: ${problem} (imgfs restore --help)\n`);
  }
  // After `--`, a word that begins with '-' is the image.
  const dashed = await run(imgfs, ['restore', '--', '-nope.img']);
  t.is(dashed.code, 1);
  t.regex(dashed.stderr, /^imgfs restore: -nope\.img: ENOENT: no such file or directory/);
});

test('`imgfs restore -` on a terminal: one line saying so, exit 1, instead of waiting for an image to be typed', async (t) => {
  // script(1) runs it with a pty as its standard input, and exits with its status.
  const result = await run('script', ['-qec', `${imgfs} restore -`, '/dev/null'], { timeoutMs: 30_000 });
  t.is(result.code, 1, result.stdout);
  t.is(result.stdout.replace(/\r\n/g, '\n'), 'imgfs restore: -: standard input is a terminal, not an image: pipe one in (cat task.img | imgfs restore -) or name its file\n');
});

test('a FIFO nobody writes to: the restore waits for a writer, as cat does, and SIGTERM or Ctrl-C ends the wait', async (t) => {
  const dir = await makeTempDir(t, 'imgfs-fifo-');
  const fifo = path.join(dir, 'image');
  await runOk('mkfifo', [fifo]);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const restorer = startRestorer(t, [fifo]);
    await waitUntil('a thread of the restorer to wait in the open of the FIFO', () => {
      try {
        return readdirSync(`/proc/${restorer.proc.pid}/task`).some((tid) => readFileSync(`/proc/${restorer.proc.pid}/task/${tid}/wchan`, 'latin1') === 'wait_for_partner');
      } catch {
        return false;
      }
    });
    restorer.proc.kill(signal);
    await restorer.exited;
    t.is(restorer.proc.signalCode, signal, restorer.stderr());
    t.is(restorer.stderr(), `imgfs restore: ${fifo}: interrupted by ${signal}\n`);
  }
});

test('--detach whose pid cannot be written (standard output on /dev/full): one line, exit 1, and the process does not run on unknown', async (t) => {
  const { image } = await dumpedCounter(t);
  const full = openSync('/dev/full', 'w');
  const restorer = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', 'restore', '--detach', image], { cwd: repoRoot, stdio: ['ignore', full, 'pipe'] });
  closeSync(full);
  let stderr = '';
  restorer.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const code = await new Promise<number | null>((resolve) => restorer.once('exit', resolve));
  await new Promise((resolve) => setImmediate(resolve));
  t.is(code, 1, stderr);
  const pid = Number(/pid (\d+) was killed\n$/.exec(stderr)?.[1]);
  t.regex(stderr, new RegExp(`^imgfs restore: ${image.replace(/[.]/g, '\\.')}: the pid cannot be written to standard output \\(ENOSPC\\): pid \\d+ was killed$`, 'm'));
  await waitUntil(`pid ${pid} to be gone`, () => !existsSync(`/proc/${pid}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')));
  t.pass();
});

test('--detach prints the pid and returns; the process runs on', async (t) => {
  const { image, dumped } = await dumpedCounter(t);
  const restorer = startRestorer(t, [image, '--detach']);
  const pid = await restorer.restoredPid();
  t.is(await restorer.exited, 0);
  const first = numbersOf(await restorer.waitForLine(isTick))[0];
  t.true(continuesCount(first, dumped), `tick ${first} after ${dumped}`);
  const later = await restorer.waitForLine((line) => isTick(line) && numbersOf(line)[0] === dumped + 3);
  t.truthy(later);
  t.true(readdirSync('/proc').includes(String(pid)));
});

test('in the foreground: SIGTERM reaches the restored process and its end is the restorer\'s', async (t) => {
  const { image } = await dumpedCounter(t);
  const terminated = startRestorer(t, [image]);
  await terminated.restoredPid();
  await terminated.waitForLine(isTick);
  terminated.proc.kill('SIGTERM');
  t.is(await terminated.exited, 128 + 15);
  t.is(terminated.proc.signalCode, 'SIGTERM', 'the restorer dies of the signal the process died of');

  const killed = startRestorer(t, [image]);
  const pid = await killed.restoredPid();
  process.kill(pid, 'SIGKILL');
  t.is(await killed.exited, 128 + 9);
  t.is(killed.proc.signalCode, 'SIGKILL');
});

test('in the foreground: every signal a program may handle reaches it once when sent to the restorer, SIGUSR1 too (no debugger opens)', async (t) => {
  const target = await startTarget(t, 'restore_forwarded');
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  const handled = [1, 2, 3, 10, 12, 14, 23, 24, 25, 26, 27, 28, 29, 30].reduce((mask, signal) => mask | (1n << BigInt(signal - 1)), 0n);
  t.is((await readImageExtension(image)).threads[0].sigmask, handled,
    'the mask it set, which sigsuspend gives back on return, not the empty one it waits with');
  const restorer = startRestorer(t, [image]);
  await restorer.restoredPid();
  const signals = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR'] as const;
  for (const signal of signals) {
    const from = restorer.lines().length;
    restorer.proc.kill(signal);
    t.is(await restorer.waitForLine((line) => line.startsWith('got '), { from }), `got ${constants.signals[signal]}`, signal);
  }
  await sleep(200);
  t.is(restorer.lines().filter((line) => line.startsWith('got ')).length, signals.length, 'each once');
  t.false(restorer.stderr().includes('Debugger'), restorer.stderr());
  restorer.proc.kill('SIGTERM');
  t.is(await restorer.exited, 128 + 15);
});

test('under nohup: SIGHUP stays ignored, neither passed on nor ending the restorer; other signals are passed on', async (t) => {
  const target = await startTarget(t, 'restore_forwarded');
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  // bin/imgfs tells Node, which sets every signal back to its default, what nohup ignored.
  const restorer = startRestorer(t, [image], { command: ['nohup', imgfs, 'restore', image] });
  await restorer.restoredPid();
  const from = restorer.lines().length;
  restorer.proc.kill('SIGHUP');
  restorer.proc.kill('SIGUSR2');
  t.is(await restorer.waitForLine((line) => line.startsWith('got '), { from }), `got ${constants.signals.SIGUSR2}`, 'SIGHUP not passed on');
  t.is(restorer.proc.exitCode, null, 'the restorer runs on');
  restorer.proc.kill('SIGTERM');
  t.is(await restorer.exited, 128 + 15);
  t.false(restorer.lines().includes(`got ${constants.signals.SIGHUP}`));
});

/**
 * Runs `imgfs restore <args>` of target's image and sends the restorer SIGTERM in the last steps
 * of its restore: once the process it makes, at the dumped pid, has its name back, until the
 * restorer lets it run. Held there (SIGSTOP), the restorer gets the signal when it goes on: the
 * handler of a signal comes at the event loop's next turn, which those steps, run in one go, do
 * not take. Returns the restorer, once it has exited, and whether the signal came before it let
 * the process go (a loaded machine may hold the watcher back until after).
 */
async function restoreTerminatedLate(t: import('ava').ExecutionContext, target: Target, args: string[]) {
  // Built first: compiling it may take longer than the restore.
  await buildTarget('stop_when_traced');
  const restorer = startRestorer(t, args);
  // A process let go before the signal came runs on (it printed its pid): the test ends it, also
  // when the test fails.
  const binary = realpathSync(target.binary);
  t.teardown(() => {
    for (const pid of restorer.lines().filter((line) => /^\d+$/.test(line)).map(Number)) {
      try {
        if (readlinkSync(`/proc/${pid}/exe`) === binary) process.kill(pid, 'SIGKILL');
      } catch {
        // Gone.
      }
    }
  });
  const name = path.basename(target.binary);
  const watcher = await startTarget(t, 'stop_when_traced', [String(target.pid), String(restorer.proc.pid), String(constants.signals.SIGTERM), name]);
  const seen = watcher.info.join(' ');
  if (seen.startsWith('never')) {
    // A loaded machine: the restore's last steps fell between two of the watcher's looks. The
    // signal comes after them, as it may anyway; a restorer in the foreground waits for it.
    t.log(`the watcher: ${seen}; the signal is sent after the restore`);
    restorer.proc.kill('SIGTERM');
    restorer.proc.kill('SIGCONT'); // a stop the watcher asked for and gave up waiting on is dropped
  }
  await restorer.exited;
  return { restorer, heldTraced: seen === 'held traced' };
}

test('SIGTERM while the restore is under way, however late: the restore is abandoned, or the process gets it', async (t) => {
  const { target, image } = await dumpedCounter(t);
  const { restorer } = await restoreTerminatedLate(t, target, [image]);
  // Abandoned (saying so), or the process got the signal and died of it: the restorer dies of it.
  t.is(restorer.proc.signalCode, 'SIGTERM', restorer.stderr());
  const errors = restorer.stderr().split('\n').filter((line) => line !== '' && !line.startsWith('imgfs restore: warning: '));
  t.true(errors.every((line) => line.endsWith(': interrupted by SIGTERM')), errors.join('\n'));
  await waitUntil(`pid ${target.pid} to be gone`, () => !existsSync(`/proc/${target.pid}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${target.pid}/status`, 'utf8')));
  t.pass();
});

test('--detach, SIGTERM however late in the restore: abandoned, or passed on to the process as it starts; never a pid printed as if all went well', async (t) => {
  // Many threads: the last steps, which make them, take long enough for the watcher to come in.
  const target = await startTarget(t, 'many_threads', ['64']);
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  const { restorer, heldTraced } = await restoreTerminatedLate(t, target, [image, '--detach']);
  if (!heldTraced) {
    t.log('the restore was done before the signal came (a loaded machine): nothing to check');
    t.pass();
    return;
  }
  t.is(restorer.proc.signalCode, 'SIGTERM', restorer.stderr());
  // The process's own output goes there too: it may tick once before the signal comes.
  t.false(restorer.lines().some((line) => /^\d+$/.test(line)), 'no pid on standard output');
  const errors = restorer.stderr().split('\n').filter((line) => line !== '' && !line.startsWith('imgfs restore: warning: '));
  t.is(errors.length, 1, restorer.stderr());
  t.regex(errors[0], new RegExp(`: interrupted by SIGTERM( as pid ${target.pid} started: passed on to it)?$`));
  await waitUntil(`pid ${target.pid} to be gone`, () => !existsSync(`/proc/${target.pid}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${target.pid}/status`, 'utf8')));
  t.pass();
});

test('the same image restored twice: two independent processes, one with the dumped pid and one with a new pid and a warning', async (t) => {
  const { target, image, dumped } = await dumpedCounter(t);
  const first = startRestorer(t, [image]);
  const second = startRestorer(t, [image]);
  const [a, b] = [await first.restoredPid(), await second.restoredPid()];
  t.not(a, b);
  t.true([a, b].includes(target.pid), 'one takes the dumped pid, free again');
  const other = a === target.pid ? b : a;
  const warning = new RegExp(`imgfs restore: warning: pid ${target.pid} is in use by another process: the process is restored with pid ${other} \\(a program that remembers its pid, as Python's asyncio does, may fail; --pid-ns keeps it\\)\n`);
  // Written before the process runs, the warning may still be in the pipe when we see it run.
  await waitUntil('the warning', () => warning.test(first.stderr() + second.stderr()), 5000).catch(() => undefined);
  t.regex(first.stderr() + second.stderr(), warning);
  for (const restored of [first, second]) {
    const tick = numbersOf(await restored.waitForLine(isTick))[0];
    t.true(continuesCount(tick, dumped), `tick ${tick} after ${dumped}`);
  }
  process.kill(a, 'SIGKILL');
  t.is(await first.exited, 128 + 9);
  const from = second.lines().length;
  t.is(numbersOf(await second.waitForLine(isTick, { from: from + 2 }))[0] > dumped + 1, true, 'the other one runs on');
});

test('--same-pid: a killed original comes back with its pid and thread ids; a pid in use is a clear error', async (t) => {
  const target = await startTarget(t, 'restore_threads');
  await target.waitForLine((line) => line.startsWith('counts '));
  const tids = readdirSync(`/proc/${target.pid}/task`).map(Number).sort();
  const image = await dumpToFile(t, target);
  await killOriginal(target);

  const restorer = startRestorer(t, [image, '--same-pid']);
  t.is(await restorer.restoredPid(), target.pid);
  t.deepEqual(readdirSync(`/proc/${target.pid}/task`).map(Number).sort(), tids);
  const counts = numbersOf(await restorer.waitForLine((line) => line.startsWith('counts ')));
  t.is(counts[4], 1);

  const taken = startRestorer(t, [image, '--same-pid']);
  t.is(await taken.exited, 1);
  t.is(taken.stderr(), `imgfs restore: ${image}: pid ${target.pid} is in use by another process: --same-pid cannot restore it\n`);
});

test('binfmt: command-line mistakes are one line naming the word, exit 2, and change nothing', (t) => {
  const cases: [string[], string][] = [
    [[], 'install, remove or status? (imgfs binfmt --help)'],
    [['instal'], "unknown command 'instal': install, remove or status (imgfs binfmt --help)"],
    [['install', 'now'], "install takes no arguments, not 'now'"],
  ];
  for (const [args, mistake] of cases) {
    let out = '';
    let err = '';
    t.is(binfmtMain(args, { out: (text) => { out += text; }, err: (text) => { err += text; } }), 2, args.join(' '));
    t.deepEqual([out, err], ['', `imgfs binfmt: ${mistake}\n`]);
  }
});

test.serial('binfmt: after `imgfs binfmt install`, executing the image restores it; remove undoes it', async (t) => {
  const before = await run(imgfs, ['binfmt', 'status']);
  const wasInstalled = /: installed/.test(before.stdout);
  const wasMounted = !before.stdout.includes('binfmt_misc is not mounted');
  t.teardown(async () => {
    if (!wasInstalled) await run(imgfs, ['binfmt', 'remove']);
    if (!wasMounted) await run('umount', ['/proc/sys/fs/binfmt_misc']); // install mounted it
  });
  const { image, dumped } = await dumpedCounter(t);
  await fsp.chmod(image, 0o700);

  const installed = await run(imgfs, ['binfmt', 'install']);
  t.is(installed.code, 0, installed.stderr);
  t.is((await run(imgfs, ['binfmt', 'install'])).code, 0, 'install is idempotent');
  t.regex((await run(imgfs, ['binfmt', 'status'])).stdout, /installed, interpreter .*bin\/imgfs-restore\n/);

  const executed = startRestorer(t, [], { command: [image] });
  const first = numbersOf(await executed.waitForLine(isTick))[0];
  t.true(continuesCount(first, dumped), `tick ${first} after ${dumped}`);
  const pid = await executed.restoredPid();
  process.kill(pid, 'SIGKILL');
  t.is(await executed.exited, 128 + 9);

  if (!wasInstalled) {
    t.is((await run(imgfs, ['binfmt', 'remove'])).code, 0);
    t.regex((await run(imgfs, ['binfmt', 'status'])).stdout, wasMounted ? /not installed\n/ : /not installed \(binfmt_misc is not mounted\)\n/, 'binfmt_misc unmounted again if install mounted it');
    t.is((await run(imgfs, ['binfmt', 'remove'])).code, 0, 'remove is idempotent');
  }
});
