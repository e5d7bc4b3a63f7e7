// Open snapshots, one per process, shared by every open file of that process. Keyed by pid and
// start time so that a reused pid never reaches another process's snapshot; released (the task
// runs on, or with --live its copy ends) when the last file of the process is closed, or a moment
// later where a kind of file asks for it (a debugger opens a core again).

import { LRUCache } from 'lru-cache';
import { Errno, ImgfsError, errnoOf } from './errors.js';
import type { Layout } from './extents.js';
import type { Snapshot } from './model.js';
import { memoryHolder, readStat } from './proc/stat.js';
import { ReadAhead } from './readahead.js';
import { NotStoppedError, takeSnapshot, type HeldSnapshot, type SnapshotOptions } from './snapshot.js';
import { TargetMemory } from './targetmemory.js';

/** How one kind of file (dump, core) is laid out over a snapshot. */
export interface FileKind {
  name: string;
  layout(snapshot: Snapshot): Layout;
  /** The size a fresh snapshot would have now, computed without freezing, through pid's memoryHolder. */
  previewSize(holder: number): number;
  /**
   * How long the snapshot is kept after the last file of its process closes, once a file of this
   * kind was open: an open within that time gets the same snapshot (the task stays frozen).
   */
  keptAfterCloseMs?: number;
}

interface Session {
  key: string;
  held: HeldSnapshot;
  memory: TargetMemory;
  layouts: Map<string, Layout>;
  refs: number;
  /** Why its snapshot can no longer be read, once it cannot. */
  ended: string | null;
  /** How long it is kept after its last file closes (FileKind.keptAfterCloseMs). */
  keptAfterCloseMs: number;
  /** Its release, while it is kept with no file open. */
  release: NodeJS.Timeout | null;
}

export interface OpenFile {
  readonly pid: number;
  /** The process's start time at the open: its pid may name another process by the first read. */
  readonly startTime: number;
  readonly kind: FileKind;
  /** Lets the file in on the snapshot it gets, or throws (the caller's permission check). */
  readonly admit: (held: HeldSnapshot) => void;
  /** Null while --no-freeze waits for its task to be stopped (see read). */
  view: FileView | null;
  /** The snapshot its first read takes, while that read waits for it. */
  taking: Promise<FileView> | null;
}

/** An open file's view of its snapshot. */
interface FileView {
  session: Session;
  layout: Layout;
  ahead: ReadAhead;
}

/**
 * How long a preview size is served again. The kernel asks for a file's attributes twice on the
 * way to an open (LOOKUP, then GETATTR for the permission check) and each preview walks the page
 * tables (about 5 ms per GiB). The kernel itself takes LOOKUP's attributes as fresh until the next
 * jiffy (4 ms at HZ=250), so a reuse window of 1 ms adds no staleness that it does not have.
 */
const PREVIEW_REUSE_MS = 1;

export class SnapshotStore {
  /** The last preview: key (session key and kind), size, and when it was computed. */
  private lastPreview = { key: '', size: 0, at: -Infinity };
  /** Snapshots being taken (their freeze waits for threads to stop), by session key. */
  private readonly starting = new Map<string, Promise<Session>>();
  private closed = false;
  private readonly sessions = new LRUCache<string, Session>({
    max: 65536,
    dispose: (session) => endSession(session, 'it was let go'),
  });

  /** clock: milliseconds, for the preview's reuse window. */
  constructor(private readonly options: SnapshotOptions, private readonly clock: () => number = () => performance.now()) {}

  /**
   * Opens a file of pid over its snapshot, taking one if none is held; opens meanwhile share it.
   * With --no-freeze, a task that is not stopped is opened without one, as the proposal's dump
   * was: its reads fail until it is stopped.
   */
  async open(pid: number, kind: FileKind, admit: (held: HeldSnapshot) => void = () => undefined): Promise<OpenFile> {
    const file: OpenFile = { pid, startTime: readStat(pid).startTime, kind, admit, view: null, taking: null };
    try {
      file.view = await this.take(file);
    } catch (err) {
      if (!(err instanceof NotStoppedError)) throw err;
    }
    return file;
  }

  /** The snapshot's view for file: the one held for its process, or a new one. */
  private async take(file: OpenFile): Promise<FileView> {
    const { pid, kind } = file;
    const key = sessionKey(pid, file.startTime);
    const held = this.sessions.get(key);
    // --no-freeze: a process that has run since its snapshot needs a new one (its open files
    // keep the old one, which their reads now refuse).
    if (held?.memory.hasRun()) this.drop(held, `pid ${pid} has run since this snapshot was taken`);
    // Kept after its files closed: for another open, if its process still lives.
    if (held?.release) {
      clearTimeout(held.release);
      held.release = null;
      if (!held.memory.stillHeld()) this.drop(held, 'the process of this snapshot has exited');
    }
    const session = (held && !held.ended ? held : undefined) ?? await this.startSession(pid, key);
    if (session.ended) throw new ImgfsError(Errno.EIO, `the snapshot of pid ${pid} was let go while it was taken`);
    try {
      // The pid may have passed to another process since its start time was read.
      if (session.held.snapshot.startTime !== file.startTime) throw new ImgfsError(Errno.ESRCH, `pid ${pid} has exited`);
      file.admit(session.held);
      const layout = layoutOf(session, kind);
      const { memory } = session;
      // --no-freeze: bytes read ahead are the snapshot's only while no thread has run since.
      const ahead = new ReadAhead((out, length, pos) => layout.read(out, length, pos, memory), () => memory.stillHeld() && !memory.hasRun());
      session.refs++;
      session.keptAfterCloseMs = Math.max(session.keptAfterCloseMs, kind.keptAfterCloseMs ?? 0);
      return { session, layout, ahead };
    } catch (err) {
      if (session.refs === 0) this.sessions.delete(key);
      throw err;
    }
  }

  read(file: OpenFile, out: Buffer, length: number, pos: number): number | Promise<number> {
    const { view } = file;
    if (!view) return this.readOnceTaken(file, out, length, pos);
    const { session } = view;
    if (session.ended) {
      // --no-freeze: its process has run since (and lives): EINVAL, as for any read then.
      throw new ImgfsError(session.memory.hasRun() && session.memory.stillHeld() ? Errno.EINVAL : Errno.EIO, session.ended);
    }
    try {
      return view.ahead.read(out, length, pos);
    } catch (err) {
      // A read that failed for another reason than the process's end fails alone.
      if (errnoOf(err) === Errno.EIO && !session.memory.stillHeld()) this.drop(session, 'the process of this snapshot has exited');
      throw err;
    }
  }

  /**
   * --no-freeze, a file opened while its task ran: as in the proposal, a read fails with EINVAL
   * while the task is not stopped; the first that finds it stopped takes the snapshot the file
   * then keeps. (The kernel releases a file only once no read of it is in flight.)
   */
  private async readOnceTaken(file: OpenFile, out: Buffer, length: number, pos: number): Promise<number> {
    try {
      // Its pid may name another process by now: never a snapshot of that one.
      if (readStat(file.pid).startTime !== file.startTime) throw new ImgfsError(Errno.ESRCH, `pid ${file.pid} has exited`);
      file.taking ??= this.take(file).finally(() => { file.taking = null; });
      file.view ??= await file.taking;
    } catch (err) {
      // Its process gone: EIO, as for a read of any open file of a process that exited.
      const errno = errnoOf(err);
      throw errno === Errno.ESRCH || errno === Errno.ENOENT ? new ImgfsError(Errno.EIO, `pid ${file.pid} has exited`) : err;
    }
    return this.read(file, out, length, pos);
  }

  private startSession(pid: number, key: string): Promise<Session> {
    let starting = this.starting.get(key);
    if (!starting) {
      starting = takeSnapshot(pid, this.options).then((held) => {
        let memory: TargetMemory;
        try {
          memory = new TargetMemory(held.memory);
        } catch (err) {
          held.release(); // else a frozen process, or a --live copy, would be held until we exit
          throw err;
        }
        const session: Session = { key, held, memory, layouts: new Map(), refs: 0, ended: null, keptAfterCloseMs: 0, release: null };
        if (this.closed) endSession(session, UNMOUNTING);
        else this.sessions.set(key, session);
        return session;
      }).finally(() => this.starting.delete(key));
      this.starting.set(key, starting);
    }
    return starting;
  }

  /** The size of file over its snapshot; undefined while it has none. */
  openSize(file: OpenFile): number | undefined {
    return file.view?.layout.size;
  }

  /** After a read's reply: a sequential reader's next bytes are read while it takes these. */
  readNext(file: OpenFile): void {
    if (file.view && !file.view.session.ended) file.view.ahead.readNext();
  }

  close(file: OpenFile): void {
    const session = file.view?.session;
    if (!session || --session.refs > 0) return;
    const drop = () => this.drop(session, 'its files were closed');
    if (session.keptAfterCloseMs > 0 && !session.ended) session.release = setTimeout(drop, session.keptAfterCloseMs);
    else drop();
  }

  /**
   * Size of a file of pid: its open snapshot's, or what a snapshot taken now would give, read
   * through holder (memoryHolder: the caller may know it already).
   */
  size(pid: number, kind: FileKind, holder = memoryHolder(pid) ?? pid): number {
    const key = sessionKey(pid, readStat(pid).startTime);
    const session = this.sessions.get(key);
    if (session && !session.ended) return layoutOf(session, kind).size;
    const previewKey = `${key}/${kind.name}`;
    const last = this.lastPreview;
    if (last.key === previewKey && this.clock() - last.at < PREVIEW_REUSE_MS) return last.size;
    const size = kind.previewSize(holder);
    this.lastPreview = { key: previewKey, size, at: this.clock() };
    return size;
  }

  /** Lets every frozen task run on, and any being frozen once it is: for unmount and shutdown. */
  releaseAll(): void {
    this.closed = true;
    for (const session of this.sessions.values()) session.ended = UNMOUNTING;
    this.sessions.clear();
  }

  private drop(session: Session, why: string): void {
    clearTimeout(session.release ?? undefined);
    session.release = null;
    session.ended = why;
    if (this.sessions.peek(session.key) === session) this.sessions.delete(session.key);
  }
}

function sessionKey(pid: number, startTime: number): string {
  return `${pid}:${startTime}`;
}

function layoutOf(session: Session, kind: FileKind): Layout {
  let layout = session.layouts.get(kind.name);
  if (!layout) {
    layout = kind.layout(session.held.snapshot);
    session.layouts.set(kind.name, layout);
  }
  return layout;
}

/** Why the snapshots of a mount that unmounts can no longer be read. */
const UNMOUNTING = 'imgfs is unmounting: its snapshots are let go';

/** Lets the snapshot go (why: unless it says already why it ended). */
function endSession(session: Session, why: string): void {
  clearTimeout(session.release ?? undefined);
  session.ended ??= why;
  session.memory.close();
  session.held.release();
}
