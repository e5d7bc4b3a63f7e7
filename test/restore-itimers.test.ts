// Interval timers: the extension records ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF (an ITIMERS
// record, asked of the frozen task with injected getitimer calls) and a restore arms them again
// with setitimer run in the restored process, with the time that was left at the dump.

import test from 'ava';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { decodeExtension, encodeExtension, RecordType } from '../src/extension.js';
import { showMain } from '../src/show.js';
import { checkProcessRecord, recordOffsets, sampleExtension } from './helpers/extension-sample.js';
import { parseImage } from './helpers/image.js';
import { makeTempDir } from './helpers/files.js';
import { numbersOf, dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';

const PERIOD_US = 200_000;
const SIGALRM = 14;
const disarmed = { interval: { sec: 0, usec: 0 }, value: { sec: 0, usec: 0 } };

test('a 200 ms ITIMER_REAL keeps ticking after the restore, and ITIMER_PROF keeps what was left', async (t) => {
  const dir = await makeTempDir(t);
  const release = path.join(dir, 'release');
  const target = await startTarget(t, 'restore_itimer', [release]);
  await target.waitForLine((line) => line === 'tick 2');
  // The count before the dump: the restored process goes on from the dumped one. (The original may
  // print the same next tick as the restored one: a SIGALRM pending at the dump is in the image.)
  const dumpedTicks = Math.max(...target.lines().filter((line) => line.startsWith('tick ')).map((line) => numbersOf(line)[0]));
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);

  const ext = await readImageExtension(image);
  const [real, virtual, prof] = ext.itimers!;
  t.deepEqual(real.interval, { sec: 0, usec: PERIOD_US });
  // Expired, with its SIGALRM pending: 0 left until the signal is taken (the kernel re-arms it then).
  const expired = real.value.usec === 0 && ext.sharedPendingSignals?.some((info) => info.readInt32LE(0) === SIGALRM);
  t.true(real.value.sec === 0 && (real.value.usec > 0 || expired) && real.value.usec <= PERIOD_US, `ITIMER_REAL value ${JSON.stringify(real.value)}`);
  t.deepEqual(virtual, disarmed);
  t.deepEqual(prof.interval, { sec: 7, usec: 0 });
  // CPU-time timers count in ticks: what is left may read a tick above what was set.
  t.true(prof.value.sec === 99 || (prof.value.sec === 100 && prof.value.usec < 100_000), `ITIMER_PROF value ${JSON.stringify(prof.value)}`);
  const shown = await showText(image);
  let json = '';
  t.is(await showMain([image, '--json'], { out: (text) => { json += text; }, err: (text) => { json += text; } }), 0);
  const content = JSON.parse(json).extension.content;
  t.deepEqual(content.itimers[0].interval, { sec: 0, usec: PERIOD_US });
  t.is(content.umask, ext.umask);
  t.deepEqual(content.rlimits, ext.rlimits!.map(({ soft, hard }) => ({ soft: `0x${soft.toString(16)}`, hard: `0x${hard.toString(16)}` })),
    'limits as hex strings');
  t.regex(shown, /\ninterval timers\n {2}ITIMER_REAL +value 0\.\d{6} s {2}interval 0\.200000 s( \(expired: armed again when its SIGALRM is taken\))?\n {2}ITIMER_VIRTUAL +disarmed\n {2}ITIMER_PROF +value (99|100)\.\d{6} s {2}interval 7\.000000 s\n/);

  const restorer = startRestorer(t, [image]);
  await restorer.restoredPid();
  const first = numbersOf(await restorer.waitForLine((line) => line.startsWith('tick ')))[0];
  t.true(first > dumpedTicks, `tick ${first} follows tick ${dumpedTicks}`);
  t.is(await restorer.waitForLine((line) => line === `tick ${first + 2}`, { timeoutMs: 5000 }), `tick ${first + 2}`);
  await fsp.writeFile(release, '');
  t.regex(await restorer.waitForLine((line) => line.startsWith('prof ')), /^prof 7 (99|100)$/);
  t.is(await restorer.exited, 0, restorer.stderr());
});

test('a periodic ITIMER_REAL dumped just as it expired (0 left, its SIGALRM pending) is armed again with its interval, not disarmed', async (t) => {
  const dir = await makeTempDir(t);
  const target = await startTarget(t, 'restore_itimer', [path.join(dir, 'release')]);
  await target.waitForLine((line) => line === 'tick 2');
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);
  // The moment is too short to dump at on purpose: the image is made to say it.
  const bytes = await fsp.readFile(image);
  const extensionAt = parseImage(bytes).end;
  const itimers = extensionAt + recordOffsets(bytes.subarray(extensionAt)).find((r) => r.type === RecordType.ITIMERS)!.at + 8;
  bytes.fill(0, itimers + 16, itimers + 32);
  await fsp.writeFile(image, bytes);
  t.deepEqual((await readImageExtension(image)).itimers![0], { interval: { sec: 0, usec: PERIOD_US }, value: { sec: 0, usec: 0 } });
  t.regex(await showText(image), /\n {2}ITIMER_REAL +value 0\.000000 s {2}interval 0\.200000 s \(expired: armed again when its SIGALRM is taken\)\n/);

  const restorer = startRestorer(t, [image]);
  await restorer.restoredPid();
  const first = numbersOf(await restorer.waitForLine((line) => line.startsWith('tick ')))[0];
  t.is(await restorer.waitForLine((line) => line === `tick ${first + 2}`, { timeoutMs: 5000 }), `tick ${first + 2}`, 'it keeps ticking');
});

test('ITIMERS record: round trip, older images without it, bad records', (t) => {
  const itimers = [
    { interval: { sec: 0, usec: 250_000 }, value: { sec: 1, usec: 999_999 } },
    disarmed,
    { interval: { sec: 3600, usec: 0 }, value: { sec: 2 ** 40, usec: 1 } },
  ];
  const { buf, at } = checkProcessRecord(t, RecordType.ITIMERS, 'ITIMERS', { itimers });
  t.is(buf.readUInt32LE(at + 4), 96, 'three struct itimerval');
  t.deepEqual([0, 8, 16, 24].map((off) => buf.readBigUInt64LE(at + 8 + off)), [0n, 250_000n, 1n, 999_999n]);

  const badUsec = Buffer.from(buf);
  badUsec.writeBigUInt64LE(1_000_000n, at + 8 + 64 + 24);
  t.is(t.throws(() => decodeExtension(badUsec))?.message, `byte ${at + 8 + 88}: ITIMERS record: timer 2 value microseconds 1000000 not below 1000000`);
  const badSec = Buffer.from(buf);
  badSec.writeBigUInt64LE(1n << 63n, at + 8 + 32);
  t.is(t.throws(() => decodeExtension(badSec))?.message, `byte ${at + 8 + 32}: ITIMERS record: timer 1 interval seconds 0x8000000000000000 is out of range`);
  t.throws(() => encodeExtension({ ...sampleExtension(), itimers: itimers.slice(1) }), { message: /2 interval timers, expected 3/ });
});
