// Seccomp (SECCOMP_FILTER and THREAD_SECCOMP records): each thread's filters and mode are dumped
// (the freeze suspends them, so they never judge what the dump injects) and given back by a
// restore, so a sandboxed process does not come back unsandboxed.

import test from 'ava';
import { promises as fsp, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeExtension, encodeExtension, RecordType } from '../src/extension.js';
import { fullSampleExtension, recordOffsets, SAMPLE_SECCOMP_FILTERS } from './helpers/extension-sample.js';
import { makeTempDir } from './helpers/files.js';
import { mountImgfs } from './helpers/mount.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { runOk } from './helpers/run.js';
import { startTarget, type Target } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';

const EOPNOTSUPP = 95;
const ENOMSG = 42;
const E2BIG = 7;

/** Each thread's Seccomp and Seccomp_filters status lines, sorted. */
function seccompStatus(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'latin1');
    return ['Seccomp', 'Seccomp_filters'].map((field) => new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)![1]).join('/');
  }).sort();
}

test('SECCOMP_FILTER and THREAD_SECCOMP: byte layout, and bad records', (t) => {
  const buf = encodeExtension(fullSampleExtension());
  const offsets = recordOffsets(buf);
  const [first, second] = offsets.filter((r) => r.type === RecordType.SECCOMP_FILTER).map((r) => r.at);
  const [leader, other] = offsets.filter((r) => r.type === RecordType.THREAD_SECCOMP).map((r) => r.at);
  t.deepEqual([0, 4, 8, 12].map((i) => buf.readUInt32LE(second + 8 + i)), [1, 1, 5, 0], 'index, flags (log), instructions, pad');
  t.deepEqual(buf.subarray(second + 24, second + 24 + 40), SAMPLE_SECCOMP_FILTERS[1].program);
  t.is(buf.readUInt32LE(first + 4), 16 + 32, 'four instructions');
  t.deepEqual([0, 4, 8, 12, 16, 20].map((i) => buf.readUInt32LE(leader + 8 + i)), [1234, 2, 2, 0, 1, 0], 'tid, mode filter, its filters oldest first');
  t.deepEqual([4, 8].map((i) => buf.readUInt32LE(other + 8 + i)), [1, 0], 'strict mode, no filters');

  const broken = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(value, pos);
    return t.throws(() => decodeExtension(copy))?.message;
  };
  t.is(broken(second + 8, 0), `byte ${second + 8}: SECCOMP_FILTER record: filter index 0, expected 1 (they ascend from 0)`);
  t.is(broken(second + 12, 3), `byte ${second + 12}: SECCOMP_FILTER record: unknown flags 0x3`);
  t.regex(broken(second + 16, 6) ?? '', /SECCOMP_FILTER record: 6 instructions do not fit the record/);
  t.is(broken(second + 20, 1), `byte ${second + 20}: SECCOMP_FILTER record: pad is not 0`);
  t.is(broken(leader + 12, 3), `byte ${leader + 12}: THREAD_SECCOMP record: seccomp mode 3 is neither 1 (strict) nor 2 (filter)`);
  t.is(broken(leader + 24, 2), `byte ${leader + 24}: THREAD_SECCOMP record: filter 2, but the image has 2 SECCOMP_FILTER records`);
  t.is(broken(other + 12, 2), `byte ${other + 16}: THREAD_SECCOMP record: no filter in filter mode`);
  t.is(broken(leader + 8, 999), `byte ${leader}: THREAD_SECCOMP record: thread 999 has no THREAD record`);
  t.regex(t.throws(() => encodeExtension({ ...fullSampleExtension(), seccompFilters: [{ program: Buffer.alloc(12), log: false }] }))?.message ?? '',
    /seccomp filter 0: a program of 12 bytes/);
});

test.serial('a sandboxed process comes back under the same filters, thread by thread, and in strict mode where it was', async (t) => {
  const target = await startTarget(t, 'restore_seccomp');
  await target.waitForLine((line) => line.startsWith('worker '));
  const before = seccompStatus(target.pid);
  t.deepEqual(before, ['1/0', '2/2', '2/3'], 'strict; main with two filters; worker with three');

  const mnt = await mountImgfs(t);
  const file = path.join(mnt.dir, String(target.pid), 'dump');
  const image = path.join(await makeTempDir(t, 'imgfs-seccomp-'), 'task.img');
  const letGo = () => waitUntil('the target let go', () => /^TracerPid:\s+0$/m.test(readFileSync(`/proc/${target.pid}/status`, 'latin1')) || undefined, 5000, 20);
  // The preview and the read are two instants of a running process, and every 100 ms a byte
  // passes through each of its pipes (PIPE_DATA): a pair of them that straddles one is taken again.
  let previewed = 0;
  for (let attempt = 0; attempt < 3; attempt++) {
    previewed = (await fsp.stat(file)).size; // the first time, no snapshot of these threads yet: a short freeze to ask
    await runOk('cp', [file, image]);
    await letGo();
    if ((await fsp.stat(image)).size === previewed) break;
  }
  t.is((await fsp.stat(image)).size, previewed, 'the size before the open is the bytes read');
  t.is((await fsp.stat(file)).size, previewed, 'and again, from what the snapshot learnt');
  await killOriginal(target);

  const ext = await readImageExtension(image);
  t.deepEqual(ext.threads.map((th) => th.seccomp), [{ mode: 'filter', filters: [0, 1] }, { mode: 'strict' }, { mode: 'filter', filters: [0, 1, 2] }]);
  t.deepEqual(ext.seccompFilters?.map((f) => [f.program.length / 8, f.log]), [[4, false], [4, true], [4, false]]);
  t.regex(await showText(image), /\nseccomp filters \(3\)\n {2}#0 {2}4 instructions\n {2}#1 {2}4 instructions {2}log\n/);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  t.deepEqual(seccompStatus(pid), before);
  const from = restorer.lines().length;
  const main = await restorer.waitForLine((line) => line.startsWith('main '), { from });
  const worker = await restorer.waitForLine((line) => line.startsWith('worker '), { from });
  await restorer.waitForLine((line) => line.startsWith('strict '), { from });
  t.deepEqual(main.split(' ').slice(2).map(Number), [-EOPNOTSUPP, -ENOMSG, 0], 'the main thread\'s two filters judge it');
  t.deepEqual(worker.split(' ').slice(2).map(Number), [-EOPNOTSUPP, -ENOMSG, -E2BIG], 'the worker\'s three');
  t.notRegex(restorer.stderr(), /seccomp|filter/);

  const again = await readImageExtension(await dumpToFile(t, { pid } as Target));
  t.deepEqual(again.seccompFilters, ext.seccompFilters, 'the same programs and flags, as the kernel holds them');
  t.deepEqual(again.threads.map((th) => th.seccomp), ext.threads.map((th) => th.seccomp));

  process.kill(pid, 'SIGUSR1'); // the strict thread makes a call strict mode forbids
  await waitUntil('the strict thread killed', () => readdirSync(`/proc/${pid}/task`).length === 2 || undefined, 5000, 20);
  const later = restorer.lines().length;
  await restorer.waitForLine((line) => line.startsWith('main '), { from: later });
  t.deepEqual(seccompStatus(pid), ['2/2', '2/3'], 'strict mode enforced; the others run on');
});
