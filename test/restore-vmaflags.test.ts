// madvise flags and mlock (VMA_FLAGS): the dump carries what smaps shows for every VMA, and the
// restored process has each region's flags again, checked against smaps of the original.

import test from 'ava';
import { VMA_FLAGS } from '../src/extension.js';
import { readVmFlags } from './helpers/groundtruth.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';

const hex = (n: number) => `0x${n.toString(16)}`;
const mnemonics = VMA_FLAGS.map((f) => f.mnemonic);
const shown = (flags: Set<string> | undefined) => mnemonics.filter((m) => flags?.has(m));

test('every region gets its madvise flag or mlock back; the dump records what smaps showed', async (t) => {
  const target = await startTarget(t, 'restore_madvise');
  const [base, stride, count, mergeable] = [parseInt(target.info[1], 16), Number(target.info[2]), Number(target.info[3]), target.info[4] === '1'];
  const regions = Array.from({ length: count }, (_, i) => base + i * stride);
  const before = readVmFlags(target.pid);
  const expected = regions.map((start) => shown(before.get(start)));
  const set = mnemonics.slice(0, count).map((m) => (m === 'lf' ? ['lo', 'lf'] : [m]));
  t.deepEqual(expected.map((flags, i) => (i === 6 && !mergeable ? ['mg'] : flags)), set,
    'the target set one flag per region, and lf comes with lo (the harness)');

  const image = await dumpToFile(t, target);
  const recorded = await readImageExtension(image);
  const entries = new Map((recorded.vmaFlags as { start: number; flags: number }[]).map((e) => [e.start, e.flags]));
  for (const [i, start] of regions.entries()) {
    t.deepEqual(shown(new Set(VMA_FLAGS.filter((f) => (entries.get(start)! & f.bit) !== 0).map((f) => f.mnemonic))), expected[i], `image: ${hex(start)}`);
  }
  t.regex(await showText(image), /wipeonfork/);
  await killOriginal(target);

  const restorer = startRestorer(t, ['--detach', image]);
  const pid = await restorer.restoredPid();
  t.is(await restorer.exited, 0, restorer.stderr());
  const after = readVmFlags(pid);
  for (const [i, start] of regions.entries()) t.deepEqual(shown(after.get(start)), expected[i], `restored: ${hex(start)}`);
});
