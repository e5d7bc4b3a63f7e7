// File locks: the extension records each descriptor's locks (a FILE_LOCKS record, from the `lock:`
// lines of /proc/<pid>/fdinfo) and a restore takes them again through the restored descriptors:
// flock, POSIX record locks and OFD locks. One held by another process by then is a warning.

import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { decodeExtension, encodeExtension, RecordType } from '../src/extension.js';
import { fdinfoLocks } from '../src/restoreinfo.js';
import { fullSampleExtension, recordOffsets } from './helpers/extension-sample.js';
import { makeTempDir } from './helpers/files.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { run } from './helpers/run.js';
import { killAndReap, startTarget } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';

/**
 * The locks /proc/locks lists (ground truth) on the given files held by pid, or by no process (OFD
 * locks belong to an open file description: pid -1): kind, type, inode, start, end.
 */
function locksOf(pid: number, files: string[]): string[] {
  const inodes = new Set(files.map((file) => String(statSync(file).ino)));
  return readFileSync('/proc/locks', 'utf8').split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length >= 8 && f[1] !== '->' && inodes.has(f[5].split(':')[2]) && (f[4] === String(pid) || f[4] === '-1'))
    .map((f) => `${f[1]} ${f[3]} ${f[5].split(':')[2]} ${f[6]} ${f[7]}`)
    .sort();
}

test('flock, POSIX and OFD locks are taken again by the restored process', async (t) => {
  const dir = await makeTempDir(t);
  const [a, b, c] = ['a', 'b', 'c'].map((name) => path.join(dir, name));
  const target = await startTarget(t, 'restore_locks', [a, b, c]);
  const ino = (file: string) => String(statSync(file).ino);
  const expected = [`FLOCK WRITE ${ino(a)} 0 EOF`, `OFDLCK READ ${ino(c)} 0 EOF`, `POSIX WRITE ${ino(b)} 100 109`].sort();
  t.deepEqual(locksOf(target.pid, [a, b, c]), expected, 'the target holds them');
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);

  const fds = (await readImageExtension(image)).fds;
  t.deepEqual(fds.find((fd) => fd.fd === 30)?.locks, [{ kind: 'flock', write: true, start: 0, end: null }]);
  t.deepEqual(fds.find((fd) => fd.fd === 31)?.locks, [{ kind: 'posix', write: true, start: 100, end: 109 }]);
  t.deepEqual(fds.find((fd) => fd.fd === 32)?.locks, [{ kind: 'ofd', write: false, start: 0, end: null }]);
  t.regex(await showText(image), /\n +POSIX write lock on bytes 100-109\n/);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  await waitUntil('the locks taken', () => locksOf(pid, [a, b, c]).length === 3);
  t.deepEqual(locksOf(pid, [a, b, c]), expected);
  t.is((await run('flock', ['-n', a, 'true'])).code, 1, 'another process cannot take the flock');
  t.notRegex(restorer.stderr(), /lock/);
});

test('a lock another process holds at the restore: a warning, and the process runs on without it', async (t) => {
  const dir = await makeTempDir(t);
  const [a, b, c] = ['a', 'b', 'c'].map((name) => path.join(dir, name));
  const target = await startTarget(t, 'restore_locks', [a, b, c]);
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);
  // The lock on the shell's fd 9, which sleep inherits: the process spawned is the one holding it.
  const holder = spawn('sh', ['-c', 'exec 9>>"$0"; flock 9; exec sleep 1000', a], { stdio: 'ignore' });
  t.teardown(() => killAndReap(holder));
  await waitUntil('the other process to hold the flock', () => readFileSync('/proc/locks', 'utf8').includes(`:${statSync(a).ino} `));

  const restorer = startRestorer(t, [image]);
  await restorer.restoredPid();
  await waitUntil('the warning', () => restorer.stderr().includes('flock'));
  t.regex(restorer.stderr(), new RegExp(`imgfs restore: warning: fd 30 \\(${a}\\): its flock write lock cannot be taken again \\((EAGAIN|EWOULDBLOCK)\\): the process runs without it\\n`));
  t.notRegex(restorer.stderr(), /fd 3[12]/);
});

test('fdinfo lock lines: flock, POSIX, OFD; waiters and leases are not locks held', (t) => {
  const info = (lines: string[]) => `pos:\t0\nflags:\t02\nmnt_id:\t27\nino:\t5\n${lines.map((l) => `lock:\t${l}\n`).join('')}`;
  t.deepEqual(fdinfoLocks(info([])), {});
  t.deepEqual(fdinfoLocks(info([
    '1: FLOCK  ADVISORY  WRITE 17415 fe:00:2172514 0 EOF',
    '2: POSIX  ADVISORY  READ  17415 fe:00:2172517 100 109',
    '3: OFDLCK ADVISORY  WRITE -1 fe:00:2172517 0 EOF',
    '3: -> POSIX  ADVISORY  WRITE 999 fe:00:2172517 0 EOF',
    '4: LEASE  ACTIVE    READ  17415 fe:00:2172514 0 EOF',
  ])), { locks: [
    { kind: 'flock', write: true, start: 0, end: null },
    { kind: 'posix', write: false, start: 100, end: 109 },
    { kind: 'ofd', write: true, start: 0, end: null },
  ] });
});

test('FILE_LOCKS: round trip, byte layout and bad records', (t) => {
  const ext = fullSampleExtension();
  const buf = encodeExtension(ext);
  t.deepEqual(decodeExtension(buf).fds.find((fd) => fd.fd === 3)?.locks, ext.fds.find((fd) => fd.fd === 3)?.locks);
  const at = recordOffsets(buf).find((r) => r.type === RecordType.FILE_LOCKS)!.at;
  t.deepEqual([buf.readUInt32LE(at + 4), buf.readUInt32LE(at + 8), buf.readUInt32LE(at + 12)], [8 + 3 * 24, 3, 3]);
  t.deepEqual([buf.readUInt32LE(at + 16), buf.readUInt32LE(at + 20), buf.readBigUInt64LE(at + 24), buf.readBigUInt64LE(at + 32)], [1, 2, 0n, 2n ** 64n - 1n]);
  const patched = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(value, pos);
    return copy;
  };
  t.is(t.throws(() => decodeExtension(patched(at + 16, 4)))?.message, `byte ${at + 16}: FILE_LOCKS record: lock 0: unknown kind 4`);
  t.is(t.throws(() => decodeExtension(patched(at + 20, 3)))?.message, `byte ${at + 20}: FILE_LOCKS record: lock 0: unknown type 3`);
  t.is(t.throws(() => decodeExtension(patched(at + 12, 4)))?.message, `byte ${at + 12}: FILE_LOCKS record: 4 locks do not fit the record`);
  const backwards = Buffer.from(buf);
  backwards.writeBigUInt64LE(99n, at + 16 + 24 + 16);
  t.is(t.throws(() => decodeExtension(backwards))?.message, `byte ${at + 16 + 24 + 16}: FILE_LOCKS record: lock 1: end 99 before start 100`);
});
