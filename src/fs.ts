// The FUSE boundary: maps fuse-native's operations onto the ProcessTree and failures onto errno.
// The only module that knows fuse-native, so the transport can be replaced without the rest.

import Fuse from 'fuse-native';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Errno, errnoOf } from './errors.js';
import type { NodeStat } from './tree.js';
import { fromWords } from './u64.js';

/** What the mount serves: ProcessTree, or anything shaped like it. */
export interface FileTree {
  readdir(path: string): string[];
  getattr(path: string): NodeStat;
  /** A handle; a promise of one while the open waits (for a freeze, say). Read-only: the mount is ro. */
  open(path: string): number | Promise<number>;
  /** Bytes read; a promise of them while the read waits (for a snapshot, say). */
  read(handle: number, out: Buffer, length: number, pos: number): number | Promise<number>;
  /** Called once a read's reply is on its way: the time until that reader's next request is free. */
  readNext?(handle: number): void;
  release(handle: number): void;
}

export interface MountOptions {
  allowOther: boolean;
  /** Called with a one-line description of every failed operation. */
  log: (line: string) => void;
}

/**
 * libfuse options fuse-native has no switch for. ro: every change (a write, chmod, rm, mkdir) is
 * the kernel's EROFS, as on any read-only file system, not a missing operation's ENOSYS.
 * attr/entry timeouts are zero because a dump's size changes with every new snapshot. direct_io
 * because pages cached before a target exited would still be served after it, where a read must
 * fail with EIO, and the cache would keep gigabytes of copies; readahead through the cache would
 * be about 30% faster (docs/performance.md).
 */
const EXTRA_OPTIONS = 'ro,attr_timeout=0,entry_timeout=0,negative_timeout=0,direct_io';

/** fuse-native's native binding: the same module instance its index.js loaded. */
const fuseIndex = createRequire(import.meta.url).resolve('fuse-native');
const binding = createRequire(fuseIndex)('node-gyp-build')(dirname(fuseIndex));

/** The operations fuse-native is given; read is ours alone (see _makeHandlerArray). */
interface Operations {
  read(path: string, fd: number, buf: Buffer, len: number, pos: number): number | Promise<number>;
  readNext(path: string, fd: number): void;
}

class ImgfsFuse extends Fuse {
  declare ops: Operations;

  _fuseOptions(): string {
    const base: string = super._fuseOptions();
    return base ? `${base},${EXTRA_OPTIONS}` : `-o${EXTRA_OPTIONS}`;
  }

  /**
   * fuse-native wraps every operation in a generic handler (rest arguments, bind, a
   * process.nextTick before the reply) that costs about 5% of a dump's read throughput. Reads get
   * a direct one that replies at once through the same native signal, with the same arguments
   * fuse-native's own _op_read passes it (bytes or -errno, 0, the buffer to detach).
   */
  _makeHandlerArray(): unknown[] {
    const handlers = super._makeHandlerArray();
    const signalRead = binding.fuse_native_signal_read;
    // fuse-native's constructor calls this after setting this.ops.
    const { ops } = this;
    handlers[binding.op_read] = (native: Buffer, _op: number, path: string, fd: number, buf: Buffer, len: number, low: number, high: number) => {
      const bytes = ops.read(path, fd, buf, len, fromWords(low, high));
      if (typeof bytes !== 'number') {
        void bytes.then((late) => signalRead(native, late, 0, buf.buffer));
        return;
      }
      signalRead(native, bytes, 0, buf.buffer);
      ops.readNext(path, fd);
      pollWhileStreaming();
    };
    return handlers;
  }
}

/**
 * While reads stream in, the main thread polls its event loop instead of sleeping in epoll, so a
 * request reaches JS without waking it (about 5% of throughput: one request is in flight at a
 * time, so every wake-up is on the critical path). It stops polling 1 ms after the last read.
 */
function pollWhileStreaming(): void {
  lastReadAt = performance.now();
  if (!polling) {
    polling = true;
    setImmediate(poll);
  }
}
const POLL_WINDOW_MS = 1;
let lastReadAt = 0;
let polling = false;
function poll(): void {
  if (performance.now() - lastReadAt < POLL_WINDOW_MS) setImmediate(poll);
  else polling = false;
}

/**
 * The errno a failure is answered with. ENOSYS, in FUSE, says the file system lacks the operation
 * itself: answered to an open, the kernel would take every later open of the mount for done
 * without asking (and its reads would come with no handle of ours). A call this kernel lacks,
 * deep inside, is an I/O error of that one file.
 */
function replyErrno(err: unknown): number {
  const errno = errnoOf(err);
  return errno === Errno.ENOSYS ? Errno.EIO : errno;
}

export interface Mounted {
  unmount(): Promise<void>;
}

export function mountTree(mountPoint: string, tree: FileTree, options: MountOptions): Promise<Mounted> {
  const fail = (op: string, path: string, err: unknown): number => {
    options.log(`${op} ${path}: ${(err as Error)?.message ?? String(err)}`);
    return -replyErrno(err);
  };
  const ops = {
    readdir(path: string, cb: (err: number, names?: string[]) => void) {
      try {
        // `ls -a`, find and shells expect a directory to list itself and its parent.
        cb(0, ['.', '..', ...tree.readdir(path)]);
      } catch (err) {
        cb(fail('readdir', path, err));
      }
    },
    getattr(path: string, cb: (err: number, stat?: object) => void) {
      try {
        cb(0, tree.getattr(path));
      } catch (err) {
        // A name that does not exist is a lookup's everyday answer (shells try many): not logged.
        cb(errnoOf(err) === Errno.ENOENT ? -Errno.ENOENT : fail('getattr', path, err));
      }
    },
    open(path: string, _flags: number, cb: (err: number, fd?: number) => void) {
      // Other requests are served while an open waits: fuse-native runs libfuse's multithreaded loop.
      new Promise<number>((resolve) => resolve(tree.open(path))).then(
        (fd) => cb(0, fd),
        (err) => cb(fail('open', path, err)),
      );
    },
    // ImgfsFuse calls it directly, not through fuse-native's callback convention: bytes now, or
    // a promise of bytes (never rejected).
    read(path: string, fd: number, buf: Buffer, len: number, pos: number): number | Promise<number> {
      try {
        const bytes = tree.read(fd, buf, len, pos);
        return typeof bytes === 'number' ? bytes : bytes.catch((err: unknown) => fail('read', path, err));
      } catch (err) {
        return fail('read', path, err);
      }
    },
    readNext(path: string, fd: number): void {
      try {
        tree.readNext?.(fd);
      } catch (err) {
        fail('readNext', path, err);
      }
    },
    release(path: string, fd: number, cb: (err: number) => void) {
      try {
        tree.release(fd);
        cb(0);
      } catch (err) {
        cb(fail('release', path, err));
      }
    },
  };
  const fuse = new ImgfsFuse(mountPoint, ops, {
    fsname: 'imgfs',
    subtype: 'imgfs',
    defaultPermissions: true,
    allowOther: options.allowOther,
    // fuse-native's per-operation timer costs 10-15% of read throughput and we never stall.
    timeout: false,
  });
  return new Promise((resolve, reject) => {
    fuse.mount((err: Error | null) => {
      if (err) return reject(err);
      resolve({
        unmount: () => new Promise<void>((res, rej) => fuse.unmount((e: Error | null) => (e ? rej(e) : res()))),
      });
    });
  });
}
