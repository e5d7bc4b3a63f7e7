// The FUSE boundary (src/fs.ts) over a file tree of the test's own, where a failure can be made
// at will.

import test from 'ava';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { errnoOf } from './helpers/files.js';
import { mountScript } from './helpers/mount.js';

test('a failure with errno ENOSYS is answered EIO: to an open, ENOSYS would tell the kernel the file system has no open at all, and it would skip every later one', async (t) => {
  const mnt = await mountScript(t, 'test/helpers/scriptedtree.ts');
  const file = path.join(mnt.dir, 'enosys');
  t.is(await errnoOf(fsp.open(file, 'r')), 'EIO');
  t.is(await errnoOf(fsp.open(file, 'r')), 'EIO', 'the next open is asked too');
  const line = /^open \/enosys: an inner call this kernel does not implement$/gm;
  const logged = await mnt.stderrOnceMatching(/(^open \/enosys: [^]*){2}/m);
  t.is(logged.match(line)?.length, 2, logged);
});

test('a read answered later (a promise) gets its bytes, or its errno', async (t) => {
  const mnt = await mountScript(t, 'test/helpers/scriptedtree.ts');
  t.is((await fsp.readFile(path.join(mnt.dir, 'late'))).toString(), 'late bytes');
  const handle = await fsp.open(path.join(mnt.dir, 'late'), 'r');
  t.teardown(() => handle.close());
  const out = Buffer.alloc(4);
  t.is((await handle.read(out, 0, 4, 5)).bytesRead, 4, 'at an offset');
  t.is(out.toString(), 'byte');
  t.is(await errnoOf(fsp.readFile(path.join(mnt.dir, 'late-einval'))), 'EINVAL');
  const logged = /^read \/late-einval: a late refusal$/m;
  t.regex(await mnt.stderrOnceMatching(logged), logged);
});
