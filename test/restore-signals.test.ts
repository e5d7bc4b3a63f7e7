// Pending signals: sent but not delivered yet (blocked, or the task is stopped), they live in the
// kernel's queues only, the process's shared one and each thread's own. The extension records
// every queued siginfo (PENDING_SIGNALS records, read with PTRACE_PEEKSIGINFO before anything
// runs in the frozen task) and a restore queues them again from inside the restored process, so
// a handler gets the same siginfo after the restore.

import test, { type ExecutionContext } from 'ava';
import koffi from 'koffi';
import { promises as fsp, readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { decodeExtension, encodeExtension, RecordType } from '../src/extension.js';
import { SIGINFO_SIZE } from '../src/ptrace/syscalls.js';
import type { ImageExtension } from '../src/extension-model.js';
import { checkPerThreadRecord, recordOffsets, sampleExtension } from './helpers/extension-sample.js';
import { makeTempDir } from './helpers/files.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget, type Target } from './helpers/targets.js';
import { run } from './helpers/run.js';
import { sleep, waitUntil } from './helpers/wait.js';

const { SIGUSR1, SIGUSR2, SIGSTOP } = constants.signals;
const SI_QUEUE = -1;
// union sigval is passed like a long on x86_64.
const sigqueue = koffi.load('libc.so.6').func('int sigqueue(int pid, int sig, intptr_t value)');

function siginfo(signal: number, code: number, pid: number, uid: number, value: number): Buffer {
  const info = Buffer.alloc(SIGINFO_SIZE);
  info.writeInt32LE(signal, 0);
  info.writeInt32LE(code, 8);
  info.writeInt32LE(pid, 16);
  info.writeUInt32LE(uid, 20);
  info.writeBigUInt64LE(BigInt(value), 24);
  return info;
}

/** The fields a sender sets, as the queues hold them. */
const sent = (info: Buffer) => ({ signal: info.readInt32LE(0), code: info.readInt32LE(8), pid: info.readInt32LE(16), value: info.readInt32LE(24) });

function statusField(pid: number, name: string): string {
  return new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '';
}

/** restore_signals with SIGUSR1 and value 42 queued to the process by us, SIGUSR2 and 7 to its worker by itself. */
async function signalledTarget(t: ExecutionContext, release: string): Promise<Target> {
  const target = await startTarget(t, 'restore_signals', [release]);
  if (sigqueue(target.pid, SIGUSR1, 42) !== 0) throw new Error(`sigqueue(${target.pid}) failed: errno ${koffi.errno()}`);
  await waitUntil('SIGUSR1 to be pending', () => (BigInt(`0x${statusField(target.pid, 'ShdPnd')}`) & (1n << BigInt(SIGUSR1 - 1))) !== 0n);
  return target;
}

/** The queues the dump of restore_signals must hold: the freeze adds nothing to them. */
function checkQueues(t: ExecutionContext, ext: ImageExtension, target: Target): void {
  t.deepEqual(ext.sharedPendingSignals?.map(sent), [{ signal: SIGUSR1, code: SI_QUEUE, pid: process.pid, value: 42 }]);
  t.deepEqual(ext.threads.map((th) => th.pendingSignals?.map(sent)), [[], [{ signal: SIGUSR2, code: SI_QUEUE, pid: target.pid, value: 7 }]]);
}

test('signals pending at the dump reach their handlers after the restore, with their siginfo', async (t) => {
  const dir = await makeTempDir(t);
  const release = path.join(dir, 'release');
  const target = await signalledTarget(t, release);
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);

  const ext = await readImageExtension(image);
  checkQueues(t, ext, target);
  const shown = await showText(image);
  t.regex(shown, new RegExp(`\\n    pending SIGUSR2 SI_QUEUE pid ${target.pid} uid 0 value 0x7\\n`));
  t.regex(shown, new RegExp(`\\npending signals of the process \\(1\\)\\n  SIGUSR1 SI_QUEUE pid ${process.pid} uid 0 value 0x2a\\n`));

  const restorer = startRestorer(t, [image]);
  await restorer.restoredPid();
  await fsp.writeFile(release, '');
  t.is(await restorer.waitForLine((line) => line.startsWith('got main ')), `got main ${SIGUSR1} ${SI_QUEUE} ${process.pid} 42`);
  t.is(await restorer.waitForLine((line) => line.startsWith('got worker ')), `got worker ${SIGUSR2} ${SI_QUEUE} ${target.pid} 7`);
  t.is(await restorer.exited, 0, restorer.stderr());
});

test('a task stopped by SIGSTOP: its queues hold the same signals, and it stays stopped with them', async (t) => {
  const dir = await makeTempDir(t);
  const target = await signalledTarget(t, path.join(dir, 'release'));
  process.kill(target.pid, SIGSTOP);
  await waitUntil('the target to stop', () => statusField(target.pid, 'State') === 'T');
  const image = await dumpToFile(t, target, dir);

  // SIGSTOP was taken off the queue when the group stopped; nothing else is queued.
  checkQueues(t, await readImageExtension(image), target);
  // The FS lets go after cp has exited (FUSE's release is asynchronous); a detached thread goes
  // back into the group-stop through the kernel, briefly runnable on the way, never in user code.
  await waitUntil('imgfs to let the target go', () => statusField(target.pid, 'TracerPid') === '0');
  await waitUntil('the target back in its group-stop', () => statusField(target.pid, 'State') === 'T');
  const again = await readImageExtension(await dumpToFile(t, target, await makeTempDir(t)));
  checkQueues(t, again, target);
});

test('PENDING_SIGNALS records: round trip, older images without them, bad records', (t) => {
  const thread = siginfo(SIGUSR2, SI_QUEUE, 1234, 0, 7);
  checkPerThreadRecord(t, RecordType.PENDING_SIGNALS, 'PENDING_SIGNALS', [{ pendingSignals: [thread, siginfo(34, -6, 1, 2, 0)] }, { pendingSignals: [] }]);

  const ext: ImageExtension = { ...sampleExtension(), sharedPendingSignals: [siginfo(SIGUSR1, SI_QUEUE, 99, 1000, 42)] };
  const buf = encodeExtension(ext);
  t.deepEqual(decodeExtension(buf), ext);
  const shared = recordOffsets(buf).find((r) => r.type === RecordType.PENDING_SIGNALS)!;
  t.is(buf.readUInt32LE(shared.at + 8), 0, 'tid 0: the shared queue');
  t.is(buf.readUInt32LE(shared.at + 12), 1);

  const badSignal = Buffer.from(buf);
  badSignal.writeInt32LE(65, shared.at + 16);
  t.is(t.throws(() => decodeExtension(badSignal))?.message, `byte ${shared.at + 16}: PENDING_SIGNALS record: si_signo 65 is not a signal`);
  const badCount = Buffer.from(buf);
  badCount.writeUInt32LE(2, shared.at + 12);
  t.is(t.throws(() => decodeExtension(badCount))?.message, `byte ${shared.at + 12}: PENDING_SIGNALS record: 2 signals do not fit the record`);
  const twice = Buffer.concat([buf.subarray(0, shared.at), buf.subarray(shared.at, shared.at + 8 + 8 + 128), buf.subarray(shared.at)]);
  twice.writeBigUInt64LE(BigInt(twice.length), 8);
  t.regex(t.throws(() => decodeExtension(twice))!.message, /a second PENDING_SIGNALS record/);
  t.throws(() => encodeExtension({ ...ext, sharedPendingSignals: [Buffer.alloc(64)] }), { message: /siginfo of 64 bytes/ });
});

test.serial('a signal pending at the dump wakes the restored pause() it interrupted, as it would have woken the original', async (t) => {
  const target = await startTarget(t, 'swapped');
  await waitUntil('the target in pause()', () => readFileSync(`/proc/${target.pid}/syscall`, 'latin1').startsWith('34 '));
  // Stopped, the task keeps SIGUSR1 pending: the image holds it, and the thread inside pause().
  process.kill(target.pid, 'SIGSTOP');
  await waitUntil('the target stopped', () => statusField(target.pid, 'State').startsWith('T'));
  process.kill(target.pid, 'SIGUSR1');
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  const ext = await readImageExtension(image);
  t.is(BigInt.asIntN(64, ext.threads[0].regs.rax), -514n, 'dumped inside pause(), interrupted (-ERESTARTNOHAND)');
  t.deepEqual(ext.sharedPendingSignals?.map((info) => info.readInt32LE(0)), [SIGUSR1]);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  await waitUntil('the restored process stopped', () => statusField(pid, 'State').startsWith('T'));
  process.kill(pid, 'SIGCONT');
  // Its handler sets a flag the loop checks when pause() returns: released from a trap stop, the
  // kernel fails the call with EINTR for the handler, and the loop goes on (a pause() run again
  // after the handler would sleep on, deaf to the signal it was waiting for).
  await restorer.waitForLine((line) => line.startsWith('swapped '));
  t.pass();
});

test('calls that a stop alone fails with EINTR (epoll_wait, semop, sigwaitinfo, recv and read with a socket timeout) sleep on through a dump, and in the restored process; one with a deadline of its own gets its EINTR', async (t) => {
  const target = await startTarget(t, 'stop_eintr');
  const semaphore = target.info[1];
  t.teardown(() => run('ipcrm', ['-s', semaphore]));
  const blocked = (pid: number) => readdirSync(`/proc/${pid}/task`).filter((tid) => /^\d+ /.test(readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'latin1'))).length;
  const returned = (lines: string[]) => lines.filter((line) => line.includes('returned'));
  await waitUntil('every thread in its call', () => blocked(target.pid) === 7);
  const image = await dumpToFile(t, target);
  // The threads let go may not have run yet: the one with a timeout says when it has.
  const timedOut = (line: string) => line.startsWith('epoll_wait(timeout) returned');
  await target.waitForLine(timedOut);
  await sleep(500);
  t.deepEqual(returned(target.lines()), ['epoll_wait(timeout) returned -1 (Interrupted system call)'], 'only the call with a timeout returned, once');
  await killOriginal(target);
  // Each worker dumped in its call, to be run again (-ERESTARTNOHAND), not failed (-EINTR), but
  // the one with a timeout. glibc may make epoll_wait an epoll_pwait (281), semop a semtimedop (220).
  const call = (nr: bigint) => ({ 281: 232, 220: 65 } as Record<string, number>)[String(nr)] ?? Number(nr);
  const dumped = (await readImageExtension(image)).threads.slice(1).map(({ regs }) => `${call(regs.orig_rax)}:${BigInt.asIntN(64, regs.rax)}`).sort();
  t.deepEqual(dumped, ['0:-514', '128:-514', '232:-4', '232:-514', '45:-514', '65:-514'], 'read, rt_sigtimedwait, epoll_wait with and without its timeout, recvfrom, semop');

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  await waitUntil('every restored thread in its call', () => blocked(pid) === 7);
  await restorer.waitForLine(timedOut);
  await sleep(500);
  t.deepEqual(returned(restorer.lines()), ['epoll_wait(timeout) returned -1 (Interrupted system call)'], 'and in the restored process only its EINTR, once');
});

test('a task stopped (SIGSTOP) before its dump keeps the EINTRs the kernel gives it when continued', async (t) => {
  const target = await startTarget(t, 'stop_eintr');
  t.teardown(() => run('ipcrm', ['-s', target.info[1]]));
  await waitUntil('every thread in its call', () => readdirSync(`/proc/${target.pid}/task`).every((tid) => /^\d+ /.test(readFileSync(`/proc/${target.pid}/task/${tid}/syscall`, 'latin1'))));
  process.kill(target.pid, 'SIGSTOP');
  await waitUntil('the target stopped', () => statusField(target.pid, 'State').startsWith('T'));
  await dumpToFile(t, target);
  process.kill(target.pid, 'SIGCONT');
  // signal(7): after a stop and SIGCONT these calls fail with EINTR; the dump does not change that.
  await target.waitForLine((line) => line.startsWith('semop returned -1'));
  t.pass();
});
