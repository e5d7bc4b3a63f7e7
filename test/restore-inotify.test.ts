// File watchers (INOTIFY records): an inotify instance comes back watching what it watched, under
// the watch descriptors the program knows, so a restored dev server still sees files change.

import test from 'ava';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { decodeExtension, encodeExtension, RecordType } from '../src/extension.js';
import { anonInodeState } from '../src/restoreinfo.js';
import { makeTempDir } from './helpers/files.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';
import { fullSampleExtension, recordOffsets } from './helpers/extension-sample.js';

const IN_CREATE = 0x100;
const IN_DELETE_SELF = 0x400;
const IN_IGNORED = 0x8000;
const IN_ISDIR = 0x40000000;

test('fdinfo of an inotify instance: each watch, ascending, its path from its file handle', (t) => {
  const info = 'pos:\t0\nflags:\t02004000\nmnt_id:\t17\nino:\t1038\n' +
    'inotify wd:a ino:6107e sdev:fe00000 mask:fff ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:7e10060000000000\n' +
    'inotify wd:2 ino:13 sdev:fe00000 mask:80000002 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:1300000000000000\n';
  const asked: string[] = [];
  const state = anonInodeState('anon_inode:inotify', info, 'fdinfo', (sdev, type, handle) => {
    asked.push(`${sdev.toString(16)} ${type} ${handle.toString('hex')}`);
    return handle[0] === 0x13 ? '/etc' : null;
  });
  t.deepEqual(state.inotify, [
    { wd: 2, mask: 0x80000002, inode: 0x13n, path: '/etc' },
    { wd: 10, mask: 0xfff, inode: 0x6107en, path: null },
  ]);
  t.deepEqual(asked, ['fe00000 1 7e10060000000000', 'fe00000 1 1300000000000000']);
});

test('INOTIFY: byte layout, and bad records', (t) => {
  const ext = fullSampleExtension();
  const buf = encodeExtension(ext);
  t.deepEqual(decodeExtension(buf).fds.at(-1)?.inotify, ext.fds.at(-1)?.inotify);
  const at = recordOffsets(buf).find((r) => r.type === RecordType.INOTIFY)!.at + 8;
  t.deepEqual([buf.readUInt32LE(at), buf.readUInt32LE(at + 4), buf.readInt32LE(at + 8), buf.readUInt32LE(at + 12), buf.readUInt32LE(at + 24)], [2000, 2, 1, IN_CREATE, 8]);
  t.is(buf.subarray(at + 32, at + 40).toString(), '/srv/app');
  t.deepEqual([buf.readInt32LE(at + 40), buf.readUInt32LE(at + 56)], [7, 0], 'the second watch, its path unknown');
  const broken = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(value, pos);
    return t.throws(() => decodeExtension(copy))?.message;
  };
  t.is(broken(at + 40, 1), `byte ${at + 40}: INOTIFY record: watch descriptor 1 is not above 1`);
  t.is(broken(at + 24, 100), `byte ${at + 24}: INOTIFY record: watch 1: a path of 100 bytes runs past the record`);
  t.is(broken(at + 24, 9), `byte ${at + 44}: INOTIFY record: watch 1: the path is not zero-padded`);
  t.is(broken(at + 28, 1), `byte ${at + 28}: INOTIFY record: watch 1: pad is not 0`);
  t.regex(broken(at + 4, 3) ?? '', /INOTIFY record: 3 watches do not fit the record/);
  t.is(broken(at, 3), `byte ${at}: INOTIFY record: fd 3 is "/tmp/a dir/data", not anon_inode:inotify`);
});

test.serial('a restored file watcher sees files change under the watch descriptors it knows; a watched directory gone since ends with IN_IGNORED', async (t) => {
  const dir = await makeTempDir(t, 'imgfs-inotify-');
  const target = await startTarget(t, 'restore_inotify', [dir]);
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  const watches = (await readImageExtension(image)).fds.find((fd) => fd.fd === 50)?.inotify;
  t.deepEqual(watches, [
    { wd: 1, mask: IN_CREATE, inode: watches![0].inode, path: dir },
    { wd: 3, mask: IN_CREATE, inode: watches![1].inode, path: path.join(dir, 'sub2') },
    { wd: 4, mask: IN_CREATE | IN_DELETE_SELF, inode: watches![2].inode, path: path.join(dir, 'sub3') },
  ]);
  t.true((await showText(image)).includes(`inotify watch 3 mask 0x100 ${path.join(dir, 'sub2')}\n`));
  await fsp.rmdir(path.join(dir, 'sub3'));

  const restorer = startRestorer(t, [image]);
  await restorer.restoredPid();
  await waitUntil('the warning', () => restorer.stderr().includes('fd 50'));
  t.regex(restorer.stderr(), new RegExp(`warning: fd 50 \\(anon_inode:inotify\\): watch 4 on ${path.join(dir, 'sub3')} cannot be added again \\(ENOENT\\): ended \\(IN_IGNORED\\)`));
  await restorer.waitForLine((line) => line === `event 4 ${IN_IGNORED.toString(16)} -`);
  await fsp.writeFile(path.join(dir, 'new-file'), '');
  await restorer.waitForLine((line) => line === `event 1 ${IN_CREATE.toString(16)} new-file`);
  await fsp.mkdir(path.join(dir, 'sub2', 'deeper'));
  await restorer.waitForLine((line) => line === `event 3 ${(IN_CREATE | IN_ISDIR).toString(16)} deeper`);
  t.false(restorer.lines().some((line) => /^event [13] 8000/.test(line)), 'the restored watches are not ended');
});
