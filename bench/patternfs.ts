// The stack's own ceiling: a file system served by src/fs.ts (same fuse-native, same options) whose
// one file's read handler only copies a precomputed pattern. `cat` of it measures what FUSE and
// fuse-native serve when producing the bytes costs nothing.
//   node --import=tsx bench/patternfs.ts <bytes> <mountpoint>

import { mountTree, type FileTree } from '../src/fs.js';
import type { NodeStat } from '../src/tree.js';

const [sizeArg, mountPoint] = process.argv.slice(2);
const size = Number(sizeArg);
const pattern = Buffer.alloc(128 * 1024, 'imgfs');
const now = new Date();
const stat = (mode: number, bytes: number): NodeStat => ({ mode, uid: 0, gid: 0, size: bytes, mtime: now, atime: now, ctime: now, nlink: 1 });

const tree: FileTree = {
  readdir: () => ['pattern'],
  getattr: (path) => (path === '/' ? stat(0o040555, 0) : stat(0o100400, size)),
  open: () => 1,
  read(_handle, out, length, pos) {
    const n = Math.max(0, Math.min(length, size - pos));
    for (let done = 0; done < n; done += pattern.length) pattern.copy(out, done, 0, Math.min(pattern.length, n - done));
    return n;
  },
  release: () => {},
};

const mounted = await mountTree(mountPoint, tree, { allowOther: false, log: (line) => process.stderr.write(`${line}\n`) });
process.once('SIGTERM', () => mounted.unmount().finally(() => process.exit(0)));
