// Scheduling (THREAD_SCHEDULING and PROCESS_SETTINGS records): each thread's policy, priority,
// nice value, CPU affinity, I/O priority and timer slack, and the process's oom_score_adj and
// personality come back as dumped, so a batch job stays at nice 19 and a real-time thread real-time.

import test from 'ava';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { decodeExtension, encodeExtension, RecordType } from '../src/extension.js';
import { fullSampleExtension, recordOffsets } from './helpers/extension-sample.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';

/** Each thread's scheduling as /proc and ionice show it, by thread name; and the process's settings. */
async function scheduling(pid: number): Promise<{ threads: Record<string, string>; oomScoreAdj: string; personality: string }> {
  const threads: Record<string, string> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const dir = `/proc/${pid}/task/${tid}`;
    const stat = readFileSync(`${dir}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is stat's field 3
    const cpus = /^Cpus_allowed_list:\s+(\S+)/m.exec(readFileSync(`${dir}/status`, 'latin1'))![1];
    const ionice = (await promisify(execFile)('ionice', ['-p', tid])).stdout.trim();
    const slack = readFileSync(`/proc/${tid}/timerslack_ns`, 'latin1').trim();
    threads[readFileSync(`${dir}/comm`, 'latin1').trim()] = `nice ${fields[16]} rt ${fields[37]} policy ${fields[38]} cpus ${cpus} io ${ionice} slack ${slack}`;
  }
  const read = (name: string) => readFileSync(`/proc/${pid}/${name}`, 'latin1').trim();
  return { threads, oomScoreAdj: read('oom_score_adj'), personality: read('personality') };
}

test('THREAD_SCHEDULING and PROCESS_SETTINGS: byte layout, and bad records', (t) => {
  const buf = encodeExtension(fullSampleExtension());
  const offsets = recordOffsets(buf);
  const thread = offsets.find((r) => r.type === RecordType.THREAD_SCHEDULING)!.at + 8;
  const settings = offsets.find((r) => r.type === RecordType.PROCESS_SETTINGS)!.at + 8;
  t.deepEqual([buf.readUInt32LE(thread), buf.readUInt32LE(thread + 4), buf.readInt32LE(thread + 16), buf.readUInt32LE(thread + 20)], [1234, 3, 19, 0], 'tid, SCHED_BATCH, nice 19');
  t.deepEqual([buf.readUInt32LE(thread + 56), buf.readUInt32LE(thread + 60), Number(buf.readBigUInt64LE(thread + 64))], [(2 << 13) | 7, 8, 50000], 'ioprio, mask bytes, slack');
  t.is(buf[thread + 72], 0b1010, 'CPUs 1 and 3');
  t.deepEqual([buf.readInt32LE(settings), buf.readUInt32LE(settings + 4)], [-17, 0x0040000]);
  t.regex(t.throws(() => decodeExtension(Object.assign(Buffer.from(buf), {}).fill(0x14, thread + 16, thread + 17)))?.message ?? '', /THREAD_SCHEDULING record: nice 20 is not in -20\.\.19/);
  const broken = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeInt32LE(value, pos);
    return t.throws(() => decodeExtension(copy))?.message;
  };
  t.is(broken(thread + 60, 12), `byte ${thread + 60}: THREAD_SCHEDULING record: a CPU mask of 12 bytes (a multiple of 8, 8..1024)`);
  t.is(broken(thread + 60, 16), `byte ${thread - 4}: THREAD_SCHEDULING record: length 80, expected 88`);
  t.is(broken(settings, 1001), `byte ${settings}: PROCESS_SETTINGS record: oom_score_adj 1001 is not in -1000..1000`);
});

test.serial('each thread comes back scheduled as it was: policy, nice, CPUs, I/O priority, timer slack; the process with its oom_score_adj and personality', async (t) => {
  const target = await startTarget(t, 'restore_sched');
  const before = await scheduling(target.pid);
  t.regex(before.threads.schedmain, /^nice 5 rt 0 policy 0 cpus 0 io best-effort: prio 6 slack 50000$/);
  t.regex(before.threads.schedidle, /^nice 0 rt 0 policy 5 cpus \d+ io idle slack 123456$/);
  t.regex(before.threads.schedrr, /^nice 0 rt 3 policy 2 /);
  t.deepEqual([before.oomScoreAdj, before.personality], ['500', '00040000']);
  const image = await dumpToFile(t, target);
  await killOriginal(target);

  const shown = await showText(image);
  t.regex(shown, /\n {4}scheduling SCHED_IDLE nice 0 priority 0 {2}cpus \d+ {2}ioprio class 3 level 0 {2}timer slack 123456 ns\n/);
  t.regex(shown, /\noom_score_adj 500 {2}personality 0x40000\n/);
  t.is((await readImageExtension(image)).threads[0].scheduling?.nice, 5);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  await restorer.waitForLine((line) => line.startsWith('tick '));
  t.deepEqual(await scheduling(pid), before, restorer.stderr());
  t.notRegex(restorer.stderr(), /not set again/);
});
