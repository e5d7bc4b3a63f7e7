// A file system served by src/fs.ts whose one file, `file`, fails every open with errno ENOSYS, as
// a failure deep inside imgfs may (a kernel call this kernel lacks), logging each open it sees:
//   node --import=tsx test/helpers/enosystree.ts <mountpoint>

import { constants } from 'node:os';
import { mountTree, type FileTree } from '../../src/fs.js';
import { ImgfsError } from '../../src/errors.js';
import type { NodeStat } from '../../src/tree.js';

const now = new Date();
const stat = (mode: number): NodeStat => ({ mode, uid: 0, gid: 0, size: 4096, mtime: now, atime: now, ctime: now, nlink: 1 });

const tree: FileTree = {
  readdir: () => ['file'],
  getattr: (path) => stat(path === '/' ? 0o040555 : 0o100400),
  open: () => { throw new ImgfsError(constants.errno.ENOSYS, 'an inner call this kernel does not implement'); },
  read: () => 0,
  release: () => {},
};

const mounted = await mountTree(process.argv[2], tree, { allowOther: false, log: (line) => process.stderr.write(`${line}\n`) });
process.once('SIGTERM', () => mounted.unmount().finally(() => process.exit(0)));
