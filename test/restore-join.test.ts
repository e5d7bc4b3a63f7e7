// What the kernel does when a restored thread exits: it clears the thread's clear_child_tid word
// and wakes whoever waits on it (pthread_join), and walks its robust futex list (robust mutexes
// the thread held become owner-died). Both are per-thread kernel state the extension records
// (THREAD_FUTEX records) and a restore sets again, in each thread.

import test from 'ava';
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeExtension, encodeExtension, ExtensionFormatError, RecordType } from '../src/extension.js';
import { sampleExtension } from './helpers/extension-sample.js';
import { makeTempDir } from './helpers/files.js';
import { repoRoot } from './helpers/mount.js';
import { dumpToFile, killOriginal, startRestorer } from './helpers/restore.js';
import { runOk } from './helpers/run.js';
import { startTarget, type Target } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';

const imgfs = path.join(repoRoot, 'bin', 'imgfs');
const SYS_FUTEX = 202;
/** struct robust_list_head, as glibc registers it. */
const ROBUST_LIST_HEAD_SIZE = 24;

/** Starts restore_join and waits until its main thread sits in pthread_join's futex wait. */
async function joiningTarget(t: import('ava').ExecutionContext, release: string): Promise<Target> {
  const target = await startTarget(t, 'restore_join', [release]);
  await waitUntil('the main thread to block in pthread_join', () =>
    readFileSync(`/proc/${target.pid}/task/${target.pid}/syscall`, 'utf8').startsWith(`${SYS_FUTEX} `));
  return target;
}

test('--new-pid: a restored thread that returns wakes the pthread_join of the restored main thread', async (t) => {
  const dir = await makeTempDir(t);
  const release = path.join(dir, 'release');
  const target = await joiningTarget(t, release);
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);

  const shown = (await runOk(imgfs, ['show', image])).stdout;
  const threadLines = shown.split('\n').filter((line) => line.startsWith('  tid '));
  t.is(threadLines.length, 2, shown);
  for (const line of threadLines) {
    t.regex(line, new RegExp(`clear_child_tid 0x[1-9a-f][0-9a-f]*  robust_list 0x[1-9a-f][0-9a-f]* \\(${ROBUST_LIST_HEAD_SIZE} bytes\\)$`));
  }

  const restorer = startRestorer(t, [image, '--new-pid']);
  const pid = await restorer.restoredPid();
  t.not(pid, target.pid);
  await fsp.writeFile(release, '');
  t.is(await restorer.waitForLine((line) => line === 'joined'), 'joined');
  t.is(await restorer.exited, 0, restorer.stderr());
});

test('--same-pid: a robust mutex the restored worker dies holding is owner-died for the main thread', async (t) => {
  const dir = await makeTempDir(t);
  const release = path.join(dir, 'release');
  const target = await joiningTarget(t, release);
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);

  // The kernel marks a robust mutex owner-died only if the word holds the dying thread's tid:
  // the dumped tid, so the worker must come back with it.
  const restorer = startRestorer(t, [image, '--same-pid']);
  t.is(await restorer.restoredPid(), target.pid);
  await fsp.writeFile(release, '');
  await restorer.waitForLine((line) => line === 'joined');
  t.is(await restorer.waitForLine((line) => line.startsWith('robust ')), 'robust owner-died');
  t.is(await restorer.exited, 0, restorer.stderr());
});

test('THREAD_FUTEX records: round trip, older images without them, a record for an unknown thread', (t) => {
  const ext = sampleExtension();
  ext.threads[0] = { ...ext.threads[0], clearChildTid: 0x7f00_1234_5990, robustList: { head: 0x7f00_1234_59a0, len: 24 } };
  ext.threads[1] = { ...ext.threads[1], clearChildTid: 0, robustList: { head: 0, len: 0 } };
  const buf = encodeExtension(ext);
  t.deepEqual(decodeExtension(buf), ext);

  const old = sampleExtension();
  const decodedOld = decodeExtension(encodeExtension(old));
  t.deepEqual(decodedOld, old);
  t.false('clearChildTid' in decodedOld.threads[0]);

  // Point the last record (a THREAD_FUTEX, written last before END) at a tid no THREAD has.
  const futexAt = buf.length - 8 - 8 - 32;
  t.is(buf.readUInt32LE(futexAt), RecordType.THREAD_FUTEX);
  const orphan = Buffer.from(buf);
  orphan.writeUInt32LE(4321, futexAt + 8);
  const error = t.throws(() => decodeExtension(orphan), { instanceOf: ExtensionFormatError });
  t.is(error?.offset, futexAt);
  t.regex(error!.message, /THREAD_FUTEX record: thread 4321 has no THREAD record/);

  const twice = Buffer.from(buf);
  twice.writeUInt32LE(ext.threads[0].tid, futexAt + 8);
  t.regex(t.throws(() => decodeExtension(twice))!.message, /THREAD_FUTEX record: a second one for thread 1234/);
});
