// The clocks a program measures time with (CLOCKS record): a restored process's CLOCK_MONOTONIC
// and CLOCK_BOOTTIME go on from their values at the dump, in a time namespace of its own, so that
// a program moved to a machine that booted later or earlier sees no jump in them.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { decodeExtension, encodeExtension, RecordType } from '../src/extension.js';
import { parseTimensOffsets, timensOffsetsText } from '../src/proc/timens.js';
import { fullSampleExtension, recordOffsets } from './helpers/extension-sample.js';
import { dumpToFile, killOriginal, readImageExtension, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';

const SECOND = 1_000_000_000;
const AWAY_MS = 2500;

const clockLine = (line: string) => line.split(' ').slice(1).map(Number);

test('timens_offsets: parsed and written with whole seconds rounded down', (t) => {
  t.deepEqual(parseTimensOffsets('monotonic           -5         300000000\nboottime             7         0\n'), { monotonic: -4_700_000_000n, boottime: 7_000_000_000n });
  t.is(timensOffsetsText({ monotonic: -4_700_000_000n, boottime: 7_000_000_001n }), 'monotonic -5 300000000\nboottime 7 1\n');
  t.is(timensOffsetsText({ monotonic: -5_000_000_000n, boottime: 0n }), 'monotonic -5 0\nboottime 0 0\n');
  t.deepEqual(parseTimensOffsets(timensOffsetsText({ monotonic: -1n, boottime: 123n })), { monotonic: -1n, boottime: 123n });
});

test('CLOCKS: byte layout, and bad records', (t) => {
  const ext = { ...fullSampleExtension(), clocks: { monotonic: { sec: 86_400, nsec: 5 }, boottime: { sec: 90_000, nsec: 999_999_999 } } };
  const buf = encodeExtension(ext);
  t.deepEqual(decodeExtension(buf).clocks, ext.clocks);
  const at = recordOffsets(buf).find((r) => r.type === RecordType.CLOCKS)!.at + 8;
  t.deepEqual([0, 8, 16, 24].map((i) => Number(buf.readBigUInt64LE(at + i))), [86_400, 5, 90_000, 999_999_999]);
  const copy = Buffer.from(buf);
  copy.writeBigUInt64LE(1_000_000_000n, at + 8);
  t.regex(t.throws(() => decodeExtension(copy))?.message ?? '', /CLOCKS record: clock: nanoseconds 1000000000 not below 1000000000/);
});

test.serial('a restored process\'s clocks go on from the dump, not from the time it was away; --host-clocks gives it this machine\'s', async (t) => {
  const target = await startTarget(t, 'restore_clock');
  await target.waitForLine((line) => line.startsWith('clock '));
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  const { clocks } = await readImageExtension(image);
  const atDump = [clocks!.monotonic, clocks!.boottime].map(({ sec, nsec }) => sec * SECOND + nsec);
  await new Promise((resolve) => setTimeout(resolve, AWAY_MS));

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  const [monotonic, boottime, raw] = clockLine(await restorer.waitForLine((line) => line.startsWith('clock ')));
  for (const [name, now, then] of [['monotonic', monotonic, atDump[0]], ['boottime', boottime, atDump[1]], ['monotonic by syscall', raw, atDump[0]]] as const) {
    t.true(now >= then && now - then < AWAY_MS * 1e6 * 0.6, `${name}: ${(now - then) / 1e6} ms after the dump's, having been away ${AWAY_MS} ms`);
  }
  const offsets = parseTimensOffsets(readFileSync(`/proc/${pid}/timens_offsets`, 'latin1'));
  t.true(offsets.monotonic < -BigInt(AWAY_MS) * 1_000_000n / 2n, `its namespace's offset ${offsets.monotonic} ns`);
  t.notRegex(restorer.stderr(), /CLOCK_MONOTONIC/);

  const onHost = startRestorer(t, [image, '--host-clocks', '--new-pid']);
  const hostPid = await onHost.restoredPid();
  const [hostMonotonic] = clockLine(await onHost.waitForLine((line) => line.startsWith('clock ')));
  t.true(hostMonotonic - atDump[0] >= AWAY_MS * 1e6, 'the host\'s clock, which went on while the process was away');
  t.deepEqual(parseTimensOffsets(readFileSync(`/proc/${hostPid}/timens_offsets`, 'latin1')), { monotonic: 0n, boottime: 0n });
});
