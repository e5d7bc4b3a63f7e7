// Alternate signal stacks: a thread's sigaltstack lives in the kernel only. The extension records
// each thread's (THREAD_SIGALTSTACK records, asked of the thread itself with an injected
// sigaltstack(NULL, &old)) and a restore sets it again in each restored thread, so a handler
// installed with SA_ONSTACK runs on it.

import test from 'ava';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { RecordType } from '../src/extension.js';
import { checkPerThreadRecord } from './helpers/extension-sample.js';
import { makeTempDir } from './helpers/files.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';

const SS_DISABLE = 2;
const SS_AUTODISARM = 0x8000_0000;

test('an SA_ONSTACK handler of each restored thread runs on that thread\'s alternate stack', async (t) => {
  const dir = await makeTempDir(t);
  const release = path.join(dir, 'release');
  const target = await startTarget(t, 'restore_altstack', [release]);
  const [mainStack, workerStack] = target.info.slice(1, 3).map((field) => parseInt(field, 16));
  const size = Number(target.info[3]);
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);

  const ext = await readImageExtension(image);
  t.deepEqual(ext.threads.map((th) => th.sigaltstack), [
    { sp: mainStack, size, flags: 0 },
    { sp: workerStack, size, flags: 0 },
  ]);
  const shown = (await showText(image)).split('\n').filter((line) => line.startsWith('    sigaltstack '));
  t.deepEqual(shown, [mainStack, workerStack].map((sp) => `    sigaltstack 0x${sp.toString(16)} (${size} bytes, flags 0)`));

  const restorer = startRestorer(t, [image]);
  await restorer.restoredPid();
  await fsp.writeFile(release, '');
  for (const who of ['main', 'worker']) {
    t.is(await restorer.waitForLine((line) => line.startsWith(`onstack ${who} `)), `onstack ${who} 1 1`);
  }
  t.is(await restorer.exited, 0, restorer.stderr());
  t.notRegex(restorer.stderr(), /signal stack/);
});

test('THREAD_SIGALTSTACK records: round trip, older images without them, a record for an unknown thread', (t) => {
  checkPerThreadRecord(t, RecordType.THREAD_SIGALTSTACK, 'THREAD_SIGALTSTACK', [
    { sigaltstack: { sp: 0x7f12_3456_0000, size: 65536, flags: SS_AUTODISARM } },
    { sigaltstack: { sp: 0, size: 0, flags: SS_DISABLE } },
  ]);
});
