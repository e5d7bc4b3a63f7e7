// The FUSE boundary (src/fs.ts) over a file tree of the test's own, where a failure can be made
// at will.

import test from 'ava';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { errnoOf } from './helpers/files.js';
import { mountScript } from './helpers/mount.js';

test('a failure with errno ENOSYS is answered EIO: to an open, ENOSYS would tell the kernel the file system has no open at all, and it would skip every later one', async (t) => {
  const mnt = await mountScript(t, 'test/helpers/enosystree.ts');
  const file = path.join(mnt.dir, 'file');
  t.is(await errnoOf(fsp.open(file, 'r')), 'EIO');
  t.is(await errnoOf(fsp.open(file, 'r')), 'EIO', 'the next open is asked too');
  t.is(mnt.stderr().match(/^open \/file: an inner call this kernel does not implement$/gm)?.length, 2, mnt.stderr());
});
