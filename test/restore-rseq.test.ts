// Restartable sequences: glibc registers an rseq area for every thread, into which the kernel
// writes the CPU the thread runs on whenever it schedules it (glibc's sched_getcpu reads it from
// there). The extension records each thread's registration (THREAD_RSEQ records) and a restore
// registers the area again in each restored thread, or the CPU number it holds goes stale.

import test from 'ava';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { RecordType } from '../src/extension.js';
import { freezeThreadGroup } from '../src/ptrace/freeze.js';
import { getRseqConfiguration } from '../src/ptrace/threadstate.js';
import { checkPerThreadRecord } from './helpers/extension-sample.js';
import { makeTempDir } from './helpers/files.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';

/** glibc's RSEQ_SIG on x86. */
const RSEQ_SIG = 0x53053053;
/** What restore_rseq writes over its area's cpu_id: no CPU has that number. */
const MARKER = 0x7ffffff0;

test('each restored thread has its rseq area registered again: sched_getcpu reads a live CPU number', async (t) => {
  const dir = await makeTempDir(t);
  const release = path.join(dir, 'release');
  const target = await startTarget(t, 'restore_rseq', [release]);
  const [rseqSize, ...tids] = target.info.slice(2).map(Number);
  t.true(rseqSize > 0, 'glibc registered rseq in the target');
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);

  const ext = await readImageExtension(image);
  t.deepEqual(ext.threads.map((th) => th.tid), tids);
  for (const thread of ext.threads) {
    t.truthy(thread.rseq && thread.rseq.address !== 0, `thread ${thread.tid} has an rseq area`);
    t.is(thread.rseq?.length, 32);
    t.is(thread.rseq?.signature, RSEQ_SIG);
  }
  const shown = (await showText(image)).split('\n').filter((line) => line.startsWith('    rseq '));
  t.deepEqual(shown, ext.threads.map((th) => `    rseq 0x${th.rseq!.address.toString(16)} (32 bytes, signature 0x53053053)`));

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  const frozen = freezeThreadGroup(pid, { timeoutMs: 5000 });
  let registered;
  try {
    registered = frozen.tids.map(getRseqConfiguration);
  } finally {
    frozen.release();
  }
  t.deepEqual(registered, ext.threads.map((th) => th.rseq), 'the kernel knows each restored thread\'s area');

  await fsp.writeFile(release, '');
  for (const who of ['main', 'worker']) {
    const cpu = Number((await restorer.waitForLine((line) => line.startsWith(`cpu ${who} `))).split(' ')[2]);
    t.not(cpu, MARKER, `${who}: the kernel rewrote the area's cpu_id`);
    t.true(cpu >= 0 && cpu < 65536, `${who}: cpu ${cpu}`);
  }
  t.is(await restorer.exited, 0, restorer.stderr());
});

test('THREAD_RSEQ records: round trip, older images without them, a record for an unknown thread', (t) => {
  checkPerThreadRecord(t, RecordType.THREAD_RSEQ, 'THREAD_RSEQ', [
    { rseq: { address: 0x7f12_3456_7890, length: 32, signature: RSEQ_SIG } },
    { rseq: { address: 0, length: 0, signature: 0 } },
  ]);
});
