// The native layer against real processes: freezing and releasing thread groups, registers,
// remote memory reads and syscall injection. Serial: the freeze timings and the CPU-time checks
// must not compete with other spinning targets on a two-core machine.

import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import koffi from 'koffi';
import { pageAlignedBuffer } from '../src/ptrace/aligned.js';
import { NativeError } from '../src/ptrace/errors.js';
import { freezeThreadGroup, type FrozenGroup } from '../src/ptrace/freeze.js';
import { injectSyscall, injectSyscalls, readBrk } from '../src/ptrace/inject.js';
import { startTarget as startProgram } from './helpers/targets.js';
import { readMemory, RemoteReader } from '../src/ptrace/memory.js';
import { getRegs, getRegset, getThreadArea, setRegs, setRegset } from '../src/ptrace/regs.js';
import { NT_PRFPREG, NT_X86_XSTATE } from '../src/elfnotes.js';
import { buildTarget } from './helpers/build.js';
import { readStat } from '../src/proc/stat.js';
import { TargetMemory } from '../src/targetmemory.js';
import { sleep, waitUntil } from './helpers/wait.js';

const PAGE = 4096;
const SYS_GETPID = 39;
const SYS_PAUSE = 34;
const SYS_GETTID = 186;
const SYS_POLL = 7;

interface NativeTarget {
  pid: number;
  /** Fields of the ready line: ['ready', pid, ...]. */
  info: string[];
  lines: string[];
  write(text: string): void;
  waitForLine(match: (line: string) => boolean, from?: number): Promise<string>;
  /** Resolves when the target's parent shell has exited, i.e. has been told the target exited. */
  parentExited: Promise<void>;
}

/**
 * Starts test/targets/<name>.c under `sh`, so that (as for a real dump) the target's parent is
 * not the tracer: a tracer that is also the parent shares its wait reports with Node's own
 * child reaping, and the test of exit notifications needs a real parent that waits.
 */
async function startTarget(t: ExecutionContext, name: string, args: string[] = []): Promise<NativeTarget> {
  const binary = await buildTarget(name);
  // A background job of sh gets /dev/null as stdin unless it is given one explicitly.
  const shell = spawn('/bin/sh', ['-c', 'exec 3<&0; "$@" <&3 3<&- & wait $!', 'sh', binary, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const parentExited = new Promise<void>((resolve) => shell.once('exit', () => resolve()));
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  shell.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  shell.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  let pid = 0;
  t.teardown(async () => {
    if (pid && parentOf(pid) === shell.pid) process.kill(pid, 'SIGKILL');
    shell.kill('SIGKILL');
    await parentExited;
  });
  const waitForLine = (match: (line: string) => boolean, from = 0) =>
    waitUntil(`a matching line from ${name} (last lines: ${JSON.stringify(lines.slice(-3))}, stderr: ${stderr})`,
      () => lines.slice(from).find(match), 10_000, 10).then((line) => line!);
  const ready = await waitForLine((line) => line.startsWith('ready '));
  const info = ready.split(' ');
  pid = Number(info[1]);
  return { pid, info, lines, write: (text) => shell.stdin.write(text), waitForLine, parentExited };
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function freeze(t: ExecutionContext, pid: number, timeoutMs = 5000): FrozenGroup {
  const group = freezeThreadGroup(pid, { timeoutMs });
  t.teardown(() => group.release());
  return group;
}

const tasksOf = (pid: number) => readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);

/** State letter and TracerPid of every thread of pid (but those that exit while we look). */
function threadStatuses(pid: number): { state: string; tracer: number }[] {
  return tasksOf(pid).flatMap((tid) => {
    let status: string;
    try {
      status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'latin1');
    } catch {
      return [];
    }
    return [{ state: /^State:\s+(\S)/m.exec(status)![1], tracer: Number(/^TracerPid:\s+(\d+)/m.exec(status)![1]) }];
  });
}

const states = (pid: number) => threadStatuses(pid).map((thread) => thread.state);
const tracers = (pid: number) => threadStatuses(pid).map((thread) => thread.tracer);

/** utime + stime of the whole process, in clock ticks. */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function throwsNative(t: ExecutionContext, fn: () => unknown, code: string): NativeError {
  const err = t.throws(fn, { instanceOf: NativeError }) as NativeError;
  t.is(err.code, code, err.message);
  return err;
}

function readProcMem(pid: number, addr: number, length: number): Buffer {
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    const out = Buffer.alloc(length);
    const got = readSync(fd, out, 0, length, addr);
    if (got !== length) throw new Error(`/proc/${pid}/mem: read ${got} of ${length} bytes at 0x${addr.toString(16)}`);
    return out;
  } finally {
    closeSync(fd);
  }
}

/** The pattern native_blocked writes: byte i = i * 7 + i / 251 + 13. */
function expectedPattern(length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (i * 7 + Math.floor(i / 251) + 13) & 0xff;
  return out;
}

test.serial('freeze stops every thread; release lets them all run on, untraced', async (t) => {
  const target = await startTarget(t, 'native_threads');
  const { pid } = target;
  await waitUntil('5 threads', () => tasksOf(pid).length === 5);

  const group = freeze(t, pid);
  t.is(group.pid, pid);
  t.is(group.tids[0], pid);
  t.deepEqual([...group.tids].sort((a, b) => a - b), tasksOf(pid));
  t.deepEqual(states(pid), ['t', 't', 't', 't', 't']);
  t.deepEqual(tracers(pid), Array(5).fill(process.pid));
  const frozenTicks = cpuTicks(pid);
  await sleep(50);
  const ticksSeen = target.lines.length;
  await sleep(250);
  t.is(cpuTicks(pid), frozenTicks, 'no CPU time while frozen');
  t.is(target.lines.length, ticksSeen, 'no output while frozen');

  group.release();
  t.notThrows(() => group.release(), 'release is idempotent');
  t.deepEqual(tracers(pid), Array(5).fill(0));
  t.false(states(pid).includes('t'));
  await target.waitForLine((line) => line.startsWith('tick '), ticksSeen);
  await waitUntil('the spinning threads to use CPU again', () => cpuTicks(pid) > frozenTicks + 10);
});

test.serial('freeze catches the threads created while it runs', async (t) => {
  const target = await startTarget(t, 'native_threads', ['churn']);
  const { pid } = target;
  for (let round = 0; round < 20; round++) {
    const group = freezeThreadGroup(pid, { timeoutMs: 5000 });
    try {
      const tasks = tasksOf(pid);
      t.deepEqual([...group.tids].sort((a, b) => a - b), tasks, `round ${round}`);
      t.true(states(pid).every((state) => state === 't'), `round ${round}: ${states(pid).join('')}`);
    } finally {
      group.release();
    }
    await sleep(5);
  }
  const from = target.lines.length;
  await target.waitForLine((line) => line.startsWith('tick '), from);
  t.true(tracers(pid).every((tracer) => tracer === 0));
});

test.serial('a stopped process is still stopped after a freeze, an injection and the release', async (t) => {
  const target = await startTarget(t, 'native_threads');
  const { pid } = target;
  await waitUntil('5 threads', () => tasksOf(pid).length === 5);
  process.kill(pid, 'SIGSTOP');
  await waitUntil('every thread stopped', () => states(pid).every((state) => state === 'T'));

  const group = freeze(t, pid);
  t.true(states(pid).every((state) => state === 't'));
  t.true(readBrk(pid) > 0);
  group.release();
  await sleep(100);
  t.deepEqual(states(pid), ['T', 'T', 'T', 'T', 'T']);
  t.deepEqual(tracers(pid), Array(5).fill(0));

  const from = target.lines.length;
  process.kill(pid, 'SIGCONT');
  await target.waitForLine((line) => line.startsWith('tick '), from);
});

test.serial('signals that arrive around a freeze are delivered exactly once', async (t) => {
  const target = await startTarget(t, 'native_threads');
  const { pid } = target;
  await waitUntil('5 threads', () => tasksOf(pid).length === 5);
  const rounds = 30;
  for (let round = 0; round < rounds; round++) {
    process.kill(pid, 'SIGUSR1');
    freezeThreadGroup(pid, { timeoutMs: 5000 }).release();
    await sleep(5);
  }
  await target.waitForLine((line) => line === `usr1 ${rounds}`);
  await sleep(200);
  t.false(target.lines.includes(`usr1 ${rounds + 1}`));
});

test.serial('a thread in uninterruptible sleep: EBUSY within the timeout, the task left untraced', async (t) => {
  const target = await startTarget(t, 'native_vfork', ['2000']);
  const { pid } = target;
  await waitUntil('the vfork parent in state D', () => states(pid)[0] === 'D');

  const started = performance.now();
  const err = throwsNative(t, () => freezeThreadGroup(pid, { timeoutMs: 300 }), 'EBUSY');
  const elapsed = performance.now() - started;
  t.true(elapsed >= 300 && elapsed < 800, `EBUSY after ${elapsed} ms`);
  t.regex(err.message, new RegExp(`thread ${pid} of pid ${pid} did not stop`));
  t.deepEqual(tracers(pid), [0]);

  await target.waitForLine((line) => line === 'resumed');
  t.deepEqual(tracers(pid), [0]);
  t.not(states(pid)[0], 't');
});

test.serial('a process with more threads than can be seized before the deadline: EBUSY, saying so, none left traced', async (t) => {
  const target = await startTarget(t, 'many_threads', ['3000']);
  const { pid } = target;
  const err = throwsNative(t, () => freezeThreadGroup(pid, { timeoutMs: 1 }), 'EBUSY');
  t.regex(err.message, new RegExp(`pid ${pid} has 3001 threads, \\d+ of them seized within 1 ms`));
  await waitUntil('every thread untraced', () => tracers(pid).every((tracer) => tracer === 0));
  t.false(states(pid).includes('t'), 'none left in a trace stop');
});

test.serial('threads that miss the deadline are detached as soon as they stop', async (t) => {
  const target = await startTarget(t, 'native_threads');
  const { pid } = target;
  await waitUntil('5 threads', () => tasksOf(pid).length === 5);
  // With no time at all, some threads are still on their way to the stop when the freeze gives up.
  let busy: NativeError | undefined;
  for (let attempt = 0; attempt < 50 && !busy; attempt++) {
    try {
      freezeThreadGroup(pid, { timeoutMs: 0 }).release();
    } catch (err) {
      if (!(err instanceof NativeError) || err.code !== 'EBUSY') throw err;
      busy = err;
    }
    await waitUntil('every thread untraced', () => tracers(pid).every((tracer) => tracer === 0), 2000, 5);
  }
  t.truthy(busy, 'a freeze without time to stop fails with EBUSY');
  t.false(states(pid).includes('t'));
  const from = target.lines.length;
  await target.waitForLine((line) => line.startsWith('tick '), from);
});

test.serial('ESRCH for a pid that is gone, a zombie, and a thread that is not a leader', async (t) => {
  const gone = await startTarget(t, 'native_blocked', ['sleep']);
  process.kill(gone.pid, 'SIGKILL');
  await gone.parentExited;
  throwsNative(t, () => freezeThreadGroup(gone.pid, { timeoutMs: 1000 }), 'ESRCH');

  const parent = await startTarget(t, 'native_blocked', ['zombie']);
  const zombie = Number(parent.info[5]);
  await waitUntil('the child to be a zombie', () => states(zombie)[0] === 'Z');
  throwsNative(t, () => freezeThreadGroup(zombie, { timeoutMs: 1000 }), 'ESRCH');

  const threads = await startTarget(t, 'native_threads');
  await waitUntil('5 threads', () => tasksOf(threads.pid).length === 5);
  const notLeader = tasksOf(threads.pid).find((tid) => tid !== threads.pid)!;
  throwsNative(t, () => freezeThreadGroup(notLeader, { timeoutMs: 1000 }), 'ESRCH');
  t.deepEqual(tracers(threads.pid), Array(5).fill(0));
});

test.serial('a target killed while frozen: release reaps it and its parent is told', async (t) => {
  const target = await startTarget(t, 'native_threads');
  await waitUntil('5 threads', () => tasksOf(target.pid).length === 5);
  const group = freeze(t, target.pid);
  process.kill(target.pid, 'SIGKILL');
  t.notThrows(() => group.release());
  await Promise.race([
    target.parentExited,
    sleep(5000).then(() => { throw new Error('the parent shell was never told that its child exited'); }),
  ]);
  t.pass();
});

test.serial('registers of a thread stopped in a syscall match /proc/<pid>/syscall', async (t) => {
  const target = await startTarget(t, 'native_blocked', ['read']);
  const { pid } = target;
  await waitUntil('the target blocked in read()', () => readFileSync(`/proc/${pid}/syscall`, 'latin1').startsWith('0 '));

  freeze(t, pid);
  const regs = getRegs(pid);
  const fields = readFileSync(`/proc/${pid}/syscall`, 'latin1').trim().split(' ');
  t.is(fields[0], '0');
  t.is(regs.orig_rax, 0n);
  t.is(BigInt.asIntN(64, regs.rax), -512n, 'the read was interrupted: -ERESTARTSYS');
  t.is(regs.rdi, 0n);
  t.is(regs.rsp, BigInt(fields[7]));
  t.is(regs.rip, BigInt(fields[8]));

  setRegs(pid, regs);
  t.deepEqual(getRegs(pid), regs);

  for (const entry of [12, 13, 14]) {
    t.deepEqual(getThreadArea(pid, entry), {
      entryNumber: entry, baseAddr: 0, limit: 0, seg32bit: false, contents: 0,
      readExecOnly: true, limitInPages: false, segNotPresent: true, useable: false,
    });
  }

  const fpregs = getRegset(pid, NT_PRFPREG);
  t.is(fpregs.length, 512);
  t.is(fpregs.readUInt32LE(24), 0x1f80, 'MXCSR at its default');
  setRegset(pid, NT_PRFPREG, fpregs);
  t.deepEqual(getRegset(pid, NT_PRFPREG), fpregs);
  const xstate = getRegset(pid, NT_X86_XSTATE);
  t.true(xstate.length >= 576, `XSAVE area of ${xstate.length} bytes`);
  t.deepEqual(xstate.subarray(0, 416), fpregs.subarray(0, 416), 'the XSAVE legacy area is the FXSAVE image');
});

test('pageAlignedBuffer: the size asked for, starting at a page boundary, whatever the allocator hands out', (t) => {
  for (const size of [1, PAGE - 1, PAGE, PAGE + 1, 3 * PAGE + 17, 4 << 20]) {
    const buffer = pageAlignedBuffer(size);
    t.is(buffer.length, size);
    t.is(Number(koffi.address(buffer)) % PAGE, 0, `size ${size}`);
    buffer.fill(0xa5);
    t.is(buffer[size - 1], 0xa5);
  }
});

test.serial('RemoteReader and readMemory read what /proc/<pid>/mem holds', async (t) => {
  const target = await startTarget(t, 'native_blocked', ['read']);
  const { pid } = target;
  const base = Number(target.info[3]);
  const length = Number(target.info[4]);
  const truth = readProcMem(pid, base, length);
  t.deepEqual(truth, expectedPattern(length));

  const whole = readMemory(pid, base, length);
  t.deepEqual(whole, truth);
  t.is(Number(koffi.address(whole)) % PAGE, 0, 'a read of whole pages lands page-aligned');
  t.deepEqual(readMemory(pid, base + 4000, 300), truth.subarray(4000, 4300));

  // Both ways a reader reads: process_vm_readv, and preadv of /proc/<pid>/mem (for a --live copy).
  const memFile = openSync(`/proc/${pid}/mem`, 'r');
  t.teardown(() => closeSync(memFile));
  const reader = new RemoteReader();
  const backing = Buffer.alloc(length + 200, 0xee);
  const out = backing.subarray(100, 100 + length);
  for (const memFd of [-1, memFile]) {
    backing.fill(0xee);
    // Out of order, contiguous runs (merged), gaps in the output that must stay untouched.
    reader.begin(pid, out, memFd);
    reader.add(8192, base + 8192, 1000);
    reader.add(9192, base + 9192, length - 9192);
    reader.add(0, base, 4096);
    reader.add(4096 + 10, base + 4096 + 10, 4096 - 10);
    t.is(reader.commit(), length - 10);
    t.deepEqual(out.subarray(0, 4096), truth.subarray(0, 4096));
    t.deepEqual(out.subarray(4096, 4106), Buffer.alloc(10, 0xee));
    t.deepEqual(out.subarray(4106), truth.subarray(4106));
    t.deepEqual(backing.subarray(0, 100), Buffer.alloc(100, 0xee));
    t.deepEqual(backing.subarray(100 + length), Buffer.alloc(100, 0xee));

    // More segments than the reader holds: several calls; output order reversed.
    const small = new RemoteReader(3);
    const reversed = Buffer.alloc(50 * 64);
    small.begin(pid, reversed, memFd);
    for (let i = 0; i < 50; i++) small.add((49 - i) * 64, base + i * 200, 64);
    t.is(small.commit(), reversed.length);
    for (let i = 0; i < 50; i++) t.deepEqual(reversed.subarray((49 - i) * 64, (50 - i) * 64), truth.subarray(i * 200, i * 200 + 64));

    // A dump's shape: pages back to back in the target, 8 bytes apart in the output (one remote
    // iovec, many local ones), and the converse; with a reader too small for either side.
    for (const segments of [1024, 3]) {
      const spread = new RemoteReader(segments);
      const records = Buffer.alloc(3 * (PAGE + 8), 0xee);
      spread.begin(pid, records, memFd);
      for (let i = 0; i < 3; i++) spread.add(8 + i * (PAGE + 8), base + i * PAGE, PAGE);
      t.is(spread.commit(), 3 * PAGE);
      for (let i = 0; i < 3; i++) {
        t.deepEqual(records.subarray(i * (PAGE + 8), i * (PAGE + 8) + 8), Buffer.alloc(8, 0xee));
        t.deepEqual(records.subarray(8 + i * (PAGE + 8), (i + 1) * (PAGE + 8)), truth.subarray(i * PAGE, (i + 1) * PAGE));
      }
      const gathered = Buffer.alloc(3 * 100);
      spread.begin(pid, gathered, memFd);
      for (let i = 0; i < 3; i++) spread.add(i * 100, base + i * 1000 + 7, 100);
      t.is(spread.commit(), gathered.length);
      for (let i = 0; i < 3; i++) t.deepEqual(gathered.subarray(i * 100, (i + 1) * 100), truth.subarray(i * 1000 + 7, i * 1000 + 107));
    }
  }

  t.throws(() => { reader.begin(pid, out); reader.add(length - 10, base, 11); }, { instanceOf: RangeError });

  // Into the PROT_NONE page after the pattern: after some bytes, then from the first byte.
  const end = base + 3 * PAGE;
  reader.begin(pid, out);
  reader.add(0, end - 10, 20);
  const short = throwsNative(t, () => reader.commit(), 'EIO');
  t.regex(short.message, new RegExp(`0x${end.toString(16)}\\b`));
  // A run of pages contiguous in the target that ends in the PROT_NONE page: the error names it.
  reader.begin(pid, Buffer.alloc(3 * (PAGE + 8)));
  for (let i = 0; i < 3; i++) reader.add(i * (PAGE + 8), end - 2 * PAGE + i * PAGE, PAGE);
  const inRun = throwsNative(t, () => reader.commit(), 'EIO');
  t.regex(inRun.message, new RegExp(`read ${2 * PAGE} of ${3 * PAGE} bytes, cannot read address 0x${end.toString(16)}\\b`));
  const none = throwsNative(t, () => readMemory(pid, end + 8, 8), 'EIO');
  t.regex(none.message, new RegExp(`0x${(end + 8).toString(16)}\\b`));

  process.kill(pid, 'SIGKILL');
  await target.parentExited;
  throwsNative(t, () => readMemory(pid, base, 16), 'ESRCH');
  reader.begin(pid, out);
  reader.add(0, base, 16);
  throwsNative(t, () => reader.commit(), 'ESRCH');
});

test.serial('injection: brk as the target sees it, and a reader blocked in read() reads on', async (t) => {
  const target = await startTarget(t, 'native_blocked', ['read']);
  const { pid } = target;
  await waitUntil('the target blocked in read()', () => readFileSync(`/proc/${pid}/syscall`, 'latin1').startsWith('0 '));

  const group = freeze(t, pid);
  const before = getRegs(pid);
  // Pending when the injection resumes the thread: held back, then given back on release.
  process.kill(pid, 'SIGUSR1');
  const brk = readBrk(pid);
  t.is(brk, Number(target.info[2]));
  t.not(brk % PAGE, 0);
  t.is(injectSyscall(pid, SYS_GETPID, []), BigInt(pid));
  // Its own registers, the interrupted read's -ERESTARTSYS included: the kernel restarts it on release.
  t.deepEqual(getRegs(pid), before);
  t.is(BigInt.asIntN(64, before.rax), -512n);
  group.release();
  await target.waitForLine((line) => line === 'usr1');

  target.write('hello\n');
  await target.waitForLine((line) => line === 'echo:hello');
  target.write('again\n');
  await target.waitForLine((line) => line === 'echo:again');
  t.false(target.lines.some((line) => line.startsWith('error')));
  t.is(target.lines.filter((line) => line === 'usr1').length, 1);
});

test.serial('injection: a call that does not return times out, naming it; the thread\'s own call goes on (it reads on)', async (t) => {
  const target = await startTarget(t, 'native_blocked', ['read']);
  const { pid } = target;
  await waitUntil('the target blocked in read()', () => readFileSync(`/proc/${pid}/syscall`, 'latin1').startsWith('0 '));
  const group = freeze(t, pid);
  const err = throwsNative(t, () => injectSyscall(pid, SYS_PAUSE, []), 'ETIMEDOUT');
  t.is(err.message, `inject(${pid}): Connection timed out: thread ${pid} did not finish an injected syscall 34 within 5000 ms`);
  group.release();
  target.write('hello\n');
  await target.waitForLine((line) => line === 'echo:hello');
  t.false(target.lines.some((line) => line.startsWith('error')));
});

test.serial('injection: a signal sent while the task is frozen wakes its pause() on release, as it would have', async (t) => {
  const target = await startProgram(t, 'swapped');
  const { pid } = target;
  await waitUntil('the target in pause()', () => readFileSync(`/proc/${pid}/syscall`, 'latin1').startsWith('34 '));
  const group = freeze(t, pid);
  t.is(injectSyscall(pid, SYS_GETPID, []), BigInt(pid));
  // Its handler sets a flag that the loop checks when pause() returns: a pause() restarted after
  // the handler instead of failing with EINTR would sleep on, deaf to the wake-up.
  process.kill(pid, 'SIGUSR1');
  group.release();
  await target.waitForLine((line) => line.startsWith('swapped '));
  t.pass();
});

test.serial('injection: a sleeper interrupted in nanosleep sleeps on and keeps counting', async (t) => {
  const target = await startTarget(t, 'native_blocked', ['sleep']);
  const { pid } = target;
  await target.waitForLine((line) => line === 'count 1');

  // The target sleeps all but microseconds of every 200 ms; try again if it was caught awake.
  let caughtSleeping = false;
  for (let attempt = 0; attempt < 5 && !caughtSleeping; attempt++) {
    const group = freezeThreadGroup(pid, { timeoutMs: 5000 });
    try {
      caughtSleeping = BigInt.asIntN(64, getRegs(pid).rax) === -516n;
      if (caughtSleeping) {
        t.is(injectSyscall(pid, SYS_GETPID, []), BigInt(pid));
        t.is(BigInt.asIntN(64, getRegs(pid).rax), -516n, 'still interrupted: the kernel runs restart_syscall on release');
      }
    } finally {
      group.release();
    }
  }
  t.true(caughtSleeping, 'the freeze caught the target in nanosleep (-ERESTART_RESTARTBLOCK)');

  const from = target.lines.length;
  const last = Number(target.lines.at(-1)!.split(' ')[1]);
  await target.waitForLine((line) => line === `count ${last + 3}`, from);
  t.false(target.lines.some((line) => line.startsWith('error')));
});

test.serial('injection into every thread of a multi-threaded process, running or sleeping', async (t) => {
  const target = await startTarget(t, 'native_threads');
  const { pid } = target;
  await waitUntil('5 threads', () => tasksOf(pid).length === 5);
  const group = freeze(t, pid);
  for (const tid of group.tids) {
    const before = getRegs(tid);
    t.is(injectSyscall(tid, SYS_GETTID, []), BigInt(tid));
    t.deepEqual(getRegs(tid), before, `thread ${tid}: its own registers, an interrupted call's -ERESTART* included`);
  }
  // All at once, twice over; then with a thread that is not ours among them: the others still
  // run their call and get their registers back, and the failure names the stranger.
  for (let round = 0; round < 2; round++) {
    const before = group.tids.map(getRegs);
    t.deepEqual(injectSyscalls(group.tids.map((tid) => ({ tid, nr: SYS_GETTID, args: [] }))), group.tids.map(BigInt));
    t.deepEqual(group.tids.map(getRegs), before);
  }
  const stranger = process.pid;
  const before = group.tids.map(getRegs);
  const error = throwsNative(t, () => injectSyscalls([...group.tids, stranger].map((tid) => ({ tid, nr: SYS_GETTID, args: [] }))), 'ESRCH');
  t.regex(error.message, new RegExp(`\\b${stranger}\\b`));
  t.deepEqual(group.tids.map(getRegs), before);
  t.is(injectSyscall(group.tids[1], SYS_GETTID, []), BigInt(group.tids[1]), 'the threads still answer');
  group.release();
  t.deepEqual(tracers(pid), Array(5).fill(0));
  const from = target.lines.length;
  const frozenTicks = cpuTicks(pid);
  await target.waitForLine((line) => line.startsWith('tick '), from);
  await waitUntil('the spinning threads to use CPU again', () => cpuTicks(pid) > frozenTicks + 10);
});

test.serial('injection into several threads: each has its own signal mask back as soon as its own call is done, not once the slowest is', async (t) => {
  const target = await startTarget(t, 'native_threads');
  const { pid } = target;
  await waitUntil('5 threads', () => tasksOf(pid).length === 5);
  const group = freeze(t, pid);
  const [slow, quick] = group.tids;
  // Another process looks at both masks while the slow thread's call (poll for 400 ms) runs: a
  // SIGKILL of imgfs in that time would let the quick one run on with every signal blocked.
  const masks = (tid: number) => `/proc/${pid}/task/${tid}/status`;
  const sampler = spawn('/bin/sh', ['-c', `echo start; i=0; while [ $i -lt 150 ]; do sed -n 's/^SigBlk:\t//p' ${masks(slow)} ${masks(quick)} | tr '\\n' ' '; echo; sleep 0.004; i=$((i + 1)); done`], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => { sampler.kill('SIGKILL'); });
  let out = '';
  sampler.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString('latin1'); });
  const ended = new Promise((resolve) => sampler.once('exit', resolve));
  await waitUntil('the sampler to start', () => out.includes('start'));
  t.deepEqual(injectSyscalls([{ tid: slow, nr: SYS_POLL, args: [0, 0, 400] }, { tid: quick, nr: SYS_GETTID, args: [] }]), [0n, BigInt(quick)]);
  await ended;
  const ALL_BLOCKED = 'fffffffffffbfeff';
  const samples = out.split('\n').slice(1).map((line) => line.trim().split(' ')).filter((pair) => pair.length === 2);
  t.true(samples.filter(([a]) => a === ALL_BLOCKED).length >= 5, `the slow thread's call was seen running: ${out}`);
  t.true(samples.filter(([, b]) => b === ALL_BLOCKED).length <= 1, `the quick thread's own mask meanwhile: ${out}`);
});

test('TargetMemory: kept pages come from the kept bytes, the rest from the process, split at their edges', (t) => {
  const PAGE_BYTES = 4096;
  const real = pageAlignedBuffer(4 * PAGE_BYTES).fill(1);
  const at = Number(koffi.address(real));
  const kept = [{ start: at + PAGE_BYTES, bytes: Buffer.alloc(PAGE_BYTES, 7) }, { start: at + 3 * PAGE_BYTES, bytes: Buffer.alloc(PAGE_BYTES, 9) }];
  const memory = new TargetMemory({ pid: process.pid, startTime: readStat(process.pid).startTime, sharesPages: false, kept });
  const out = Buffer.alloc(4 * PAGE_BYTES + 8);
  memory.begin(out);
  memory.add(8, at + 100, 4 * PAGE_BYTES - 100);
  memory.commit();
  const expected = Buffer.concat([Buffer.alloc(PAGE_BYTES - 100, 1), Buffer.alloc(PAGE_BYTES, 7), Buffer.alloc(PAGE_BYTES, 1), Buffer.alloc(PAGE_BYTES, 9)]);
  t.true(out.subarray(8, 8 + expected.length).equals(expected), 'process, kept, process, kept, each where it belongs');
  t.true(out.subarray(0, 8).equals(Buffer.alloc(8)), 'nothing outside the segment');
  const inside = Buffer.alloc(16);
  memory.begin(inside);
  memory.add(0, at + PAGE_BYTES + 10, 16);
  memory.commit();
  t.true(inside.equals(Buffer.alloc(16, 7)), 'a segment inside kept pages only');
});
