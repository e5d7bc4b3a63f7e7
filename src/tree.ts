// The file tree: / lists the thread-group leaders of /proc, /<pid>/ holds one file per layout
// kind. Everything here speaks paths, stats and errors; fs.ts turns it into FUSE replies.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { Errno, ImgfsError, errnoOf } from './errors.js';
import { OwnerHistory } from './ownerhistory.js';
import { isRunning, memoryHolder, readStat } from './proc/stat.js';
import { processFileOwner } from './proc/owner.js';
import { statusNumber } from './proc/status.js';
import type { FileKind, OpenFile, SnapshotStore } from './sessions.js';
import type { HeldSnapshot } from './snapshot.js';

export interface NodeStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  atime: Date;
  ctime: Date;
  nlink: number;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

type Parsed = { pid: null } | { pid: number; file: FileKind | null };

interface Opened {
  path: string;
  file: OpenFile;
  stat: NodeStat;
}

export class ProcessTree {
  /** Open files, by path, with their attributes as of the open: their snapshot's. */
  private readonly handles = new Map<number, Opened>();
  private nextHandle = 1;
  private readonly kinds: Map<string, FileKind>;
  private readonly mountTime = new Date();
  /**
   * Who the files of each process were shown as owned by (ownerhistory.ts); only where users
   * other than root are let in (--allow-other): root may open anything anyway.
   */
  private readonly owners: OwnerHistory | null;

  constructor(private readonly store: SnapshotStore, kinds: FileKind[], othersLetIn: boolean) {
    this.owners = othersLetIn ? new OwnerHistory(isRunning) : null;
    this.kinds = new Map(kinds.map((k) => [k.name, k]));
  }

  readdir(path: string): string[] {
    const node = this.parse(path);
    if (node.pid === null) return readdirSync('/proc').filter((name) => /^\d+$/.test(name));
    if (node.file) throw new ImgfsError(Errno.ENOTDIR, 'a file, not a directory');
    try {
      return memoryHolder(node.pid) !== null ? [...this.kinds.keys()] : [];
    } catch (err) {
      throw orExited(err, node.pid);
    }
  }

  getattr(path: string): NodeStat {
    try {
      return this.currentAttributes(path);
    } catch (err) {
      // fstat of an open file comes by path too (the kernel passes no handle): once its process has
      // gone, the path names nothing, but the open file still is its snapshot.
      const open = errnoOf(err) === Errno.ENOENT ? [...this.handles.values()].find((o) => o.path === path) : undefined;
      // Its size is its snapshot's, which --no-freeze may have taken after the open.
      if (open) return { ...open.stat, size: this.store.openSize(open.file) ?? open.stat.size };
      throw err;
    }
  }

  private currentAttributes(path: string): NodeStat {
    const node = this.parse(path);
    if (node.pid === null) return this.stat(S_IFDIR | 0o555, 0, 0, 0, this.mountTime, 2);
    if (!node.file) {
      const dir = statSync(`/proc/${node.pid}`);
      return this.stat(S_IFDIR | 0o555, dir.uid, dir.gid, 0, dir.mtime, 2);
    }
    try {
      const leader = readStat(node.pid);
      const holder = memoryHolder(node.pid, leader);
      if (holder === null) throw new ImgfsError(Errno.ENOENT, `pid ${node.pid} has no memory to dump`);
      const owner = processFileOwner(holder);
      const size = this.store.size(node.pid, node.file, holder);
      this.owners?.note(node.pid, leader.startTime, owner.uid);
      return this.stat(S_IFREG | 0o400, owner.uid, owner.gid, size, owner.mtime, 1);
    } catch (err) {
      throw orExited(err, node.pid);
    }
  }

  async open(path: string): Promise<number> {
    const node = this.parse(path);
    if (node.pid === null || !node.file) throw new ImgfsError(Errno.EISDIR, 'a directory, not a file');
    const pid = node.pid;
    const file = await this.store.open(pid, node.file, (held) => this.checkOwnerSteady(pid, held)).catch((err: unknown) => {
      throw orExited(err, pid);
    });
    let stat: NodeStat;
    try {
      stat = this.currentAttributes(path);
    } catch (err) {
      this.store.close(file);
      throw err;
    }
    const handle = this.nextHandle++;
    this.handles.set(handle, { path, file, stat });
    return handle;
  }

  /**
   * The kernel let this open in by an owner shown before the freeze: if the process was ever shown
   * as another user's (it has run a set-user-ID program since, say), the one let in may be that
   * user, who may not read what it is now. Refused: EACCES.
   */
  private checkOwnerSteady(pid: number, { snapshot, owner }: HeldSnapshot): void {
    const others = this.owners?.othersThan(pid, snapshot.startTime, owner.uid) ?? [];
    if (others.length > 0) {
      throw new ImgfsError(Errno.EACCES, `process ${pid} was shown as uid ${others.join(', ')}'s and is uid ${owner.uid}'s now (it has run a set-user-ID program, changed its ids or made itself non-dumpable since): with --allow-other imgfs cannot tell whom an open is for, so it refuses this process's files (a mount without --allow-other serves them to root)`);
    }
  }

  read(handle: number, out: Buffer, length: number, pos: number): number | Promise<number> {
    return this.store.read(this.opened(handle).file, out, length, pos);
  }

  readNext(handle: number): void {
    const opened = this.handles.get(handle);
    if (opened) this.store.readNext(opened.file);
  }

  release(handle: number): void {
    const { file } = this.opened(handle);
    this.handles.delete(handle);
    this.store.close(file);
  }

  private opened(handle: number): Opened {
    const opened = this.handles.get(handle);
    if (!opened) throw new ImgfsError(Errno.EBADF, `no open file ${handle}`);
    return opened;
  }

  /** Resolves a path to a live thread-group leader and file kind, or throws ENOENT. */
  private parse(path: string): Parsed {
    if (path === '/') return { pid: null };
    const m = /^\/(\d+)(?:\/([^/]+))?$/.exec(path);
    if (!m) throw new ImgfsError(Errno.ENOENT, 'no such file');
    const pid = Number(m[1]);
    if (!isThreadGroupLeader(pid)) throw new ImgfsError(Errno.ENOENT, `no process ${pid}`);
    if (m[2] === undefined) return { pid, file: null };
    const file = this.kinds.get(m[2]);
    if (!file) throw new ImgfsError(Errno.ENOENT, 'no such file');
    return { pid, file };
  }

  private stat(mode: number, uid: number, gid: number, size: number, time: Date, nlink: number): NodeStat {
    return { mode, uid, gid, size, mtime: time, atime: time, ctime: time, nlink };
  }
}

/**
 * err, or ENOENT where the process has exited meanwhile (gone, a zombie, or on its way out, its
 * memory let go: then its /proc files and ptrace answer ESRCH): whatever failed then failed
 * because of that, and a process that does not exist is ENOENT.
 */
function orExited(err: unknown, pid: number): unknown {
  const errno = errnoOf(err);
  if (errno === Errno.ENOENT) return err;
  let exited = errno === Errno.ESRCH;
  try {
    exited ||= memoryHolder(pid) === null;
  } catch {
    exited = true;
  }
  return exited ? new ImgfsError(Errno.ENOENT, `process ${pid} exited meanwhile`) : err;
}

/** /proc resolves thread ids too; only thread-group leaders are processes here. */
function isThreadGroupLeader(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return statusNumber(status, 'Tgid') === pid;
  } catch {
    return false;
  }
}
