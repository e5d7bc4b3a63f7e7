// A file system served by src/fs.ts whose files fail or answer as a test needs, logging every
// failure it answers:
//   node --import=tsx test/helpers/scriptedtree.ts <mountpoint>
// - enosys: every open fails with errno ENOSYS, as a failure deep inside imgfs may (a kernel call
//   this kernel lacks);
// - late: a read answers later (a promise), with the bytes "late bytes" from its offset;
// - late-einval: a read fails later (a rejected promise) with EINVAL.

import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { mountTree, type FileTree } from '../../src/fs.js';
import { ImgfsError } from '../../src/errors.js';
import type { NodeStat } from '../../src/tree.js';

const LATE = Buffer.from('late bytes');
const FILES = ['enosys', 'late', 'late-einval'];
const now = new Date();
const stat = (mode: number, size: number): NodeStat => ({ mode, uid: 0, gid: 0, size, mtime: now, atime: now, ctime: now, nlink: 1 });

const tree: FileTree = {
  readdir: () => FILES,
  getattr: (path) => {
    if (path === '/') return stat(0o040555, 0);
    if (!FILES.includes(path.slice(1))) throw new ImgfsError(constants.errno.ENOENT, `no ${path}`);
    return stat(0o100400, LATE.length);
  },
  open: (path) => {
    if (path === '/enosys') throw new ImgfsError(constants.errno.ENOSYS, 'an inner call this kernel does not implement');
    return FILES.indexOf(path.slice(1));
  },
  read: async (handle, out, length, pos) => {
    await sleep(50);
    if (FILES[handle] === 'late-einval') throw new ImgfsError(constants.errno.EINVAL, 'a late refusal');
    return LATE.copy(out, 0, pos, Math.min(LATE.length, pos + length));
  },
  release: () => {},
};

const mounted = await mountTree(process.argv[2], tree, { allowOther: false, log: (line) => process.stderr.write(`${line}\n`) });
process.once('SIGTERM', () => mounted.unmount().finally(() => process.exit(0)));
