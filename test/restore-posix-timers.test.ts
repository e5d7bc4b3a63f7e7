// POSIX timers: the extension records each timer_create timer (a POSIX_TIMERS record: how it was
// created, from /proc/<pid>/timers, and what is left of it, from an injected timer_gettime) and a
// restore creates them again with their dumped ids (PR_TIMER_CREATE_RESTORE_IDS) and arms them
// with the time that was left.

import test from 'ava';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { decodeExtension, encodeExtension, RecordType } from '../src/extension.js';
import type { PosixTimer } from '../src/extension-model.js';
import { NativeError } from '../src/ptrace/errors.js';
import type { RemoteTask } from '../src/ptrace/remote.js';
import { armTimers } from '../src/restore/limits.js';
import { showMain } from '../src/show.js';
import { checkProcessRecord, SAMPLE_POSIX_TIMERS, sampleExtension } from './helpers/extension-sample.js';
import { makeTempDir } from './helpers/files.js';
import { numbersOf, dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';

const SIGRTMIN = 34;
const CLOCK_MONOTONIC = 1;
const CLOCK_BOOTTIME = 7;

test('POSIX timers come back with their ids: the 200 ms one ticks on with its sigev_value, the thread one in its thread', async (t) => {
  const dir = await makeTempDir(t);
  const release = path.join(dir, 'release');
  const target = await startTarget(t, 'restore_posix_timer', [release]);
  const [a, b, c] = numbersOf(target.info.join(' '));
  t.deepEqual([a, b, c], [1, 2, 3], 'id 0 was the deleted timer\'s');
  const workerTid = numbersOf(await target.waitForLine((line) => line.startsWith('worker-tid ')))[0];
  await target.waitForLine((line) => line.startsWith('tick 2 '));
  await target.waitForLine((line) => line === 'worker 1');
  // Before the dump: once it is copied, the original runs on until it is killed, and may tick again.
  const dumpedTicks = Math.max(...target.lines().filter((line) => line.startsWith('tick ')).map((line) => numbersOf(line)[0]));
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);

  const timers = (await readImageExtension(image)).posixTimers!;
  const setup = ({ id, clock, notify, tid, signal, sigevValue }: PosixTimer) => ({ id, clock, notify, tid, signal, sigevValue });
  t.deepEqual(timers.map(setup), [
    { id: a, clock: CLOCK_MONOTONIC, notify: 0, tid: 0, signal: SIGRTMIN, sigevValue: 1234n },
    { id: b, clock: CLOCK_BOOTTIME, notify: 1, tid: 0, signal: 0, sigevValue: 0n },
    { id: c, clock: CLOCK_MONOTONIC, notify: 4, tid: workerTid, signal: SIGRTMIN + 1, sigevValue: 0n },
  ]);
  t.deepEqual(timers.map((timer) => timer.interval), [{ sec: 0, nsec: 200_000_000 }, { sec: 0, nsec: 0 }, { sec: 0, nsec: 300_000_000 }]);
  t.true(timers[0].value.sec === 0 && timers[0].value.nsec > 0 && timers[0].value.nsec <= 200_000_000, `timer A value ${JSON.stringify(timers[0].value)}`);
  t.true(timers[1].value.sec > 990 && timers[1].value.sec < 1000, `timer B value ${JSON.stringify(timers[1].value)}`);

  const shown = await showText(image);
  t.regex(shown, new RegExp(`\\nPOSIX timers \\(3\\)\\n {2}timer 1 {2}CLOCK_MONOTONIC {2}signal 34 value 0x4d2 {2}value 0\\.\\d{9} s {2}interval 0\\.200000000 s\\n` +
    ` {2}timer 2 {2}CLOCK_BOOTTIME {2}no signal {2}value 99\\d\\.\\d{9} s {2}interval 0\\.000000000 s\\n` +
    ` {2}timer 3 {2}CLOCK_MONOTONIC {2}signal 35 value 0x0 to thread ${workerTid} {2}value 0\\.\\d{9} s {2}interval 0\\.300000000 s\\n`));
  let json = '';
  t.is(await showMain([image, '--json'], { out: (text) => { json += text; }, err: (text) => { json += text; } }), 0);
  const content = JSON.parse(json).extension.content;
  t.like(content.posixTimers[0], { id: a, signal: SIGRTMIN, sigevValue: '0x4d2', interval: { sec: 0, nsec: 200_000_000 } });

  const restorer = startRestorer(t, [image]);
  await restorer.restoredPid();
  const first = await restorer.waitForLine((line) => line.startsWith('tick '));
  // The original, let go after the dump, may have reported a tick that the image holds unreported.
  t.true(numbersOf(first)[0] >= dumpedTicks, `${first} follows tick ${dumpedTicks}`);
  t.deepEqual(numbersOf(first).slice(1), [1234, a], 'si_value and si_timerid');
  const next = numbersOf(first)[0] + 2;
  t.deepEqual(numbersOf(await restorer.waitForLine((line) => line.startsWith(`tick ${next} `), { timeoutMs: 5000 })), [next, 1234, a]);
  const workerTicks = numbersOf(await restorer.waitForLine((line) => line.startsWith('worker '), { timeoutMs: 5000 }))[0];
  await restorer.waitForLine((line) => line === `worker ${workerTicks + 1}`, { timeoutMs: 5000 });
  await fsp.writeFile(release, '');
  t.is(await restorer.waitForLine((line) => line.startsWith(`timer ${a} `)), `timer ${a} 200 0`);
  t.regex(await restorer.waitForLine((line) => line.startsWith(`timer ${b} `)), new RegExp(`^timer ${b} 0 99\\d$`));
  t.is(await restorer.waitForLine((line) => line.startsWith(`timer ${c} `)), `timer ${c} 300 0`);
  t.is(await restorer.exited, 0, restorer.stderr());
  t.notRegex(restorer.stderr(), /POSIX timer/);
});

test('POSIX_TIMERS record: round trip, older images without it, bad records', (t) => {
  const posixTimers = SAMPLE_POSIX_TIMERS;
  const { buf, at } = checkProcessRecord(t, RecordType.POSIX_TIMERS, 'POSIX_TIMERS', { posixTimers });
  t.is(buf.readUInt32LE(at + 4), 8 + 4 * 64, 'count, pad, four timers');
  const timer = (i: number) => at + 8 + 8 + i * 64;
  t.deepEqual([buf.readInt32LE(timer(2)), buf.readInt32LE(timer(2) + 4), buf.readUInt32LE(timer(2) + 8), buf.readUInt32LE(timer(2) + 24)],
    [7, -2, 4, 1240]);
  t.deepEqual(decodeExtension(encodeExtension({ ...sampleExtension(), posixTimers: [] })).posixTimers, [], 'a record with no timers');

  const corrupt = (edit: (copy: Buffer) => void) => {
    const copy = Buffer.from(buf);
    edit(copy);
    return t.throws(() => decodeExtension(copy))?.message;
  };
  t.is(corrupt((copy) => copy.writeBigUInt64LE(1_000_000_000n, timer(0) + 40)),
    `byte ${timer(0) + 40}: POSIX_TIMERS record: timer 0: nanoseconds 1000000000 not below 1000000000`);
  t.is(corrupt((copy) => copy.writeInt32LE(1, timer(1))), `byte ${timer(1)}: POSIX_TIMERS record: timer 1: id 1 is not above the previous timer's 1`);
  t.is(corrupt((copy) => copy.writeUInt32LE(3, timer(1) + 8)), `byte ${timer(1)}: POSIX_TIMERS record: timer 1: sigev_notify 3 is not one the kernel accepts`);
  t.is(corrupt((copy) => copy.writeInt32LE(65, timer(0) + 12)), `byte ${timer(0)}: POSIX_TIMERS record: timer 0: signal 65 is not a signal`);
  t.is(corrupt((copy) => copy.writeUInt32LE(0, timer(2) + 24)), `byte ${timer(2)}: POSIX_TIMERS record: timer 2: tid 0 with sigev_notify 4`);
  t.is(corrupt((copy) => copy.writeUInt32LE(999, timer(2) + 24)), `byte ${timer(2) + 24}: POSIX_TIMERS record: timer 2: thread 999 has no THREAD record`);
  t.is(corrupt((copy) => copy.writeUInt32LE(1, timer(3) + 28)), `byte ${timer(3) + 28}: POSIX_TIMERS record: timer 3: pad is not 0`);
  t.is(corrupt((copy) => copy.writeUInt32LE(5, at + 8)), `byte ${at + 8}: POSIX_TIMERS record: 5 timers do not fit the record`);
  t.throws(() => encodeExtension({ ...sampleExtension(), posixTimers: [posixTimers[1], posixTimers[0]] }), { message: /POSIX timer 1: id 1 is not above the previous timer's 2/ });
  t.throws(() => encodeExtension({ ...sampleExtension(), posixTimers: [{ ...posixTimers[2], tid: 4321 }] }), { message: /POSIX timer 7: thread 4321 has no THREAD record/ });
});

test('a kernel without PR_TIMER_CREATE_RESTORE_IDS: one warning line per timer, and the restore goes on', (t) => {
  const calls: string[] = [];
  const leader = {
    tid: 0,
    prctl: () => { throw new NativeError(22, 'prctl(77)', 'Invalid argument'); },
    timerCreate: () => { calls.push('timer_create'); },
    timerSettime: () => { calls.push('timer_settime'); },
  } as unknown as RemoteTask;
  const warnings: string[] = [];
  const disarmed = { interval: { sec: 0, usec: 0 }, value: { sec: 0, usec: 0 } };
  armTimers(leader, { itimers: [disarmed, disarmed, disarmed], posixTimers: SAMPLE_POSIX_TIMERS.slice(0, 2) }, new Map(), (line) => warnings.push(line));
  t.deepEqual(warnings, [
    'POSIX timer 1 cannot be created again (EINVAL: this kernel cannot give a timer its id): lost',
    'POSIX timer 2 cannot be created again (EINVAL: this kernel cannot give a timer its id): lost',
  ]);
  t.deepEqual(calls, [], 'no timer created with another id, none armed');
});
