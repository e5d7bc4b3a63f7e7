// The stack's own ceilings: a file system served by src/fs.ts (same fuse-native, same options) with
// one file, `pattern`, whose read handler does the least there is to do:
//   node --import=tsx bench/patternfs.ts <bytes> <mountpoint>
//     copies a precomputed pattern: what FUSE and fuse-native serve when bytes cost nothing;
//   node --import=tsx bench/patternfs.ts <bytes> <pid> <hex-address> <mountpoint>
//     reads <bytes> of pid's memory from <hex-address> with one process_vm_readv per request, straight
//     into the FUSE buffer, while the request waits: what a file system that serves a process's
//     memory through this stack reaches without reading ahead (no snapshot, layout or page records).

import { mountTree, type FileTree } from '../src/fs.js';
import { RemoteReader } from '../src/ptrace/memory.js';
import type { NodeStat } from '../src/tree.js';

const args = process.argv.slice(2);
const [sizeArg, pidArg, addressArg] = args;
const mountPoint = args[args.length - 1];
const size = Number(sizeArg);
const now = new Date();
const stat = (mode: number, bytes: number): NodeStat => ({ mode, uid: 0, gid: 0, size: bytes, mtime: now, atime: now, ctime: now, nlink: 1 });

type Fill = (out: Buffer, n: number, pos: number) => void;

function patternFill(): Fill {
  const pattern = Buffer.alloc(128 * 1024, 'imgfs');
  return (out, n) => {
    for (let done = 0; done < n; done += pattern.length) pattern.copy(out, done, 0, Math.min(pattern.length, n - done));
  };
}

function memoryFill(pid: number, address: number): Fill {
  const reader = new RemoteReader(1);
  return (out, n, pos) => {
    reader.begin(pid, out);
    reader.add(0, address + pos, n);
    reader.commit();
  };
}

const fill = args.length === 4 ? memoryFill(Number(pidArg), parseInt(addressArg, 16)) : patternFill();

const tree: FileTree = {
  readdir: () => ['pattern'],
  getattr: (path) => (path === '/' ? stat(0o040555, 0) : stat(0o100400, size)),
  open: () => 1,
  read(_handle, out, length, pos) {
    const n = Math.max(0, Math.min(length, size - pos));
    fill(out, n, pos);
    return n;
  },
  release: () => {},
};

const mounted = await mountTree(mountPoint, tree, { allowOther: false, log: (line) => process.stderr.write(`${line}\n`) });
process.once('SIGTERM', () => mounted.unmount().finally(() => process.exit(0)));
