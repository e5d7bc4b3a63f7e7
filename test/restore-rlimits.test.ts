// Resource limits: the extension records every one (an RLIMITS record, read from
// /proc/<pid>/limits) and a restore sets them on the restored process with prlimit from the
// restorer, after the pending signals are queued again: a target that dropped RLIMIT_SIGPENDING
// to 0 gets its queued signal back all the same. A hard limit above the restorer's cannot be
// raised without CAP_SYS_RESOURCE: one warning line, and the restore goes on.

import test from 'ava';
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeExtension, encodeExtension, RecordType, RLIM_INFINITY } from '../src/extension.js';
import { checkProcessRecord, sampleExtension } from './helpers/extension-sample.js';
import { makeTempDir } from './helpers/files.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';

const RLIMIT_NOFILE = 7;
const SIGRTMIN = 34;
const limits = (pid: number): string => readFileSync(`/proc/${pid}/limits`, 'utf8');
/** The soft and hard limit of a /proc/<pid>/limits line, e.g. "Max open files". */
function limitOf(text: string, name: string): string[] {
  const match = new RegExp(`^${name}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(text);
  if (!match) throw new Error(`no "${name}" in ${text}`);
  return [match[1], match[2]];
}

/** The restorer's warnings about limits (not those about descriptors the test runner leaks to its children). */
const limitWarnings = (stderr: string): string[] => stderr.split('\n').filter((line) => /RLIMIT_|limit/.test(line));

test('the restored process has the dumped limits, set after its pending signals are queued again', async (t) => {
  const dir = await makeTempDir(t);
  const release = path.join(dir, 'release');
  const target = await startTarget(t, 'restore_rlimits', [release]);
  const dumped = limits(target.pid);
  t.deepEqual(limitOf(dumped, 'Max open files'), ['100', '200']);
  t.deepEqual(limitOf(dumped, 'Max pending signals'), ['0', '0']);
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);

  const ext = await readImageExtension(image);
  t.is(ext.rlimits?.length, 16);
  t.deepEqual(ext.rlimits?.[RLIMIT_NOFILE], { soft: 100n, hard: 200n });
  t.deepEqual(ext.rlimits?.[3], { soft: 4n << 20n, hard: RLIM_INFINITY }, 'RLIMIT_STACK');
  const shown = await showText(image);
  t.regex(shown, /\nresource limits \(16\): soft hard\n {2}RLIMIT_CPU +3600 7200\n/);
  t.regex(shown, /\n {2}RLIMIT_STACK +4194304 unlimited\n/);
  t.regex(shown, /\n {2}RLIMIT_NOFILE +100 200\n/);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  t.is(limits(pid), dumped, '/proc/<pid>/limits reads the same');
  await fsp.writeFile(release, '');
  t.is(await restorer.waitForLine((line) => line.startsWith('got ')), `got ${SIGRTMIN} 5`);
  t.is(await restorer.exited, 0, restorer.stderr());
  t.deepEqual(limitWarnings(restorer.stderr()), []);
});

test('a hard limit above the restorer\'s: one warning, the soft limit as close as allowed, the restore goes on', async (t) => {
  const dir = await makeTempDir(t);
  const release = path.join(dir, 'release');
  const target = await startTarget(t, 'restore_rlimits', [release]);
  const dumped = limits(target.pid);
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);

  const command = ['prlimit', '--nofile=150:150', process.execPath, '--import=tsx', 'src/cli.ts', 'restore', image];
  const restorer = startRestorer(t, [], { command });
  const pid = await restorer.restoredPid();
  t.deepEqual(limitOf(limits(pid), 'Max open files'), ['100', '150']);
  const others = (text: string) => text.split('\n').filter((line) => !line.startsWith('Max open files'));
  t.deepEqual(others(limits(pid)), others(dumped));
  await fsp.writeFile(release, '');
  t.is(await restorer.waitForLine((line) => line.startsWith('got ')), `got ${SIGRTMIN} 5`);
  t.is(await restorer.exited, 0);
  t.deepEqual(limitWarnings(restorer.stderr()), ['imgfs restore: warning: RLIMIT_NOFILE hard limit 200 cannot be raised from 150 (EPERM): kept']);
});

test('RLIMITS record: round trip, older images without it, bad records', (t) => {
  const rlimits = Array.from({ length: 16 }, (_, i) => ({ soft: BigInt(i), hard: i % 2 ? RLIM_INFINITY : BigInt(i) }));
  const { buf, at } = checkProcessRecord(t, RecordType.RLIMITS, 'RLIMITS', { rlimits });
  t.deepEqual([buf.readUInt32LE(at + 4), buf.readUInt32LE(at + 8)], [8 + 16 * 16, 16], 'count, then (soft, hard) pairs');
  t.is(buf.readBigUInt64LE(at + 16 + 16 * RLIMIT_NOFILE + 8), RLIM_INFINITY);

  const inverted = Buffer.from(buf);
  inverted.writeBigUInt64LE(8n, at + 16 + 16 * 2);
  t.is(t.throws(() => decodeExtension(inverted))?.message, `byte ${at + 16 + 16 * 2}: RLIMITS record: resource 2: soft limit 8 above the hard limit 2`);
  const badCount = Buffer.from(buf);
  badCount.writeUInt32LE(15, at + 8);
  t.is(t.throws(() => decodeExtension(badCount))?.message, `byte ${at + 4}: RLIMITS record: length 264, expected 248`);
  const tooMany = Buffer.from(buf);
  tooMany.writeUInt32LE(65, at + 8);
  t.is(t.throws(() => decodeExtension(tooMany))?.message, `byte ${at + 8}: RLIMITS record: 65 resources, at most 64`);
  t.throws(() => encodeExtension({ ...sampleExtension(), rlimits: [{ soft: 2n, hard: 1n }] }), { message: /resource 0: soft limit 2 above the hard limit 1/ });
});
