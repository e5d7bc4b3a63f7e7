// Files no path leads to any more (FILE_CONTENT records): a memfd and a deleted file the process
// still has open come back with their bytes, offsets and seals, where a restore could otherwise
// only put /dev/null.

import test from 'ava';
import { readlinkSync } from 'node:fs';
import { decodeExtension, encodeExtension, RecordType } from '../src/extension.js';
import { fullSampleExtension, recordOffsets } from './helpers/extension-sample.js';
import { makeTempDir } from './helpers/files.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { procSyscall, SYS_PAUSE } from './helpers/groundtruth.js';
import { startTarget } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';

const F_SEAL_SHRINK = 2;
const F_SEAL_GROW = 4;

test('FILE_CONTENT: byte layout, and bad records', (t) => {
  const ext = fullSampleExtension();
  const target = '/tmp/a dir/data (deleted)';
  ext.fds = ext.fds.map((fd) => (fd.fd === 3 ? { ...fd, target, content: { memfd: false, seals: 0, mode: 0o640, bytes: Buffer.from('twelve bytes') } } :
    fd.sharesWith === 3 ? { ...fd, target } : fd));
  const buf = encodeExtension(ext);
  t.deepEqual(decodeExtension(buf).fds.find((fd) => fd.fd === 3)?.content, ext.fds.find((fd) => fd.fd === 3)?.content);
  const at = recordOffsets(buf).find((r) => r.type === RecordType.FILE_CONTENT)!.at + 8;
  t.deepEqual([buf.readUInt32LE(at), buf.readUInt32LE(at + 4), buf.readUInt32LE(at + 12), Number(buf.readBigUInt64LE(at + 16))], [3, 0, 0o640, 12]);
  t.is(buf.subarray(at + 24, at + 36).toString(), 'twelve bytes');
  const broken = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(value, pos);
    return t.throws(() => decodeExtension(copy))?.message;
  };
  t.is(broken(at + 4, 2), `byte ${at + 4}: FILE_CONTENT record: unknown flags 0x2`);
  t.is(broken(at + 16, 13), `byte ${at - 4}: FILE_CONTENT record: length 36, expected 37`);
  t.is(broken(at, 4), `byte ${at}: FILE_CONTENT record: fd 4 is "pipe:[98765]", not a regular file`);
});

test.serial('a memfd and a deleted file come back with their bytes, offsets and seals', async (t) => {
  const dir = await makeTempDir(t, 'imgfs-lost-');
  const target = await startTarget(t, 'restore_lostfiles', [dir]);
  // A signal sent between its ready line and its pause() would be taken before it waits for one.
  await waitUntil('the target to wait in pause()', () => procSyscall(target.pid)?.nr === SYS_PAUSE);
  process.kill(target.pid, 'SIGUSR1');
  const before = [await target.waitForLine((l) => l.startsWith('memfd ')), await target.waitForLine((l) => l.startsWith('doomed '))];
  t.deepEqual(before, [`memfd kept in memory only seals ${F_SEAL_SHRINK | F_SEAL_GROW} at 5`, 'doomed written, then deleted at 7 7']);
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  const fds = (await readImageExtension(image)).fds;
  t.like(fds.find((fd) => fd.fd === 60)?.content, { memfd: true, seals: F_SEAL_SHRINK | F_SEAL_GROW });
  t.like(fds.find((fd) => fd.fd === 61)?.content, { memfd: false, mode: 0o640 });
  t.is(fds.find((fd) => fd.fd === 62)?.content, undefined, 'one file, its bytes once');
  t.regex(await showText(image), /\n {9}holds 21 bytes \(mode 0640\)\n/);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  const from = restorer.lines().length;
  process.kill(pid, 'SIGUSR1');
  t.deepEqual([await restorer.waitForLine((l) => l.startsWith('memfd '), { from }), await restorer.waitForLine((l) => l.startsWith('doomed '), { from })], before);
  t.is(readlinkSync(`/proc/${pid}/fd/60`), '/memfd:imgfs-lost (deleted)');
  t.regex(readlinkSync(`/proc/${pid}/fd/61`), new RegExp(`^${dir}/#\\d+ \\(deleted\\)$`), 'an unnamed file in the same directory');
  t.notRegex(restorer.stderr(), /fd 6[0-2]/);
});
