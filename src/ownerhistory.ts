// The owners a process's files were shown with, lately. The kernel checks an open against the
// owner a getattr gave it (default_permissions), and imgfs freezes the process only after that:
// a process that runs a set-user-ID program in between is another user's by then, and its memory
// must not go to the user the check let in. fuse-native does not tell who is opening, so an open
// is refused while the process was shown, lately, as owned by a user (not root) other than the
// one that owns the snapshot: whoever the check let in might be that user.

/** How long an owner shown counts: far longer than an open takes from its check to its freeze. */
export const OWNER_MEMORY_MS = 60_000;

export class OwnerHistory {
  /** By process (pid and start time): the last time each uid was shown. */
  private readonly shown = new Map<string, Map<number, number>>();

  private forgotAt = -Infinity;

  constructor(private readonly clock: () => number = () => performance.now()) {}

  /** A getattr showed the process's files as uid's. Root's need no note: only root passes them. */
  note(pid: number, startTime: number, uid: number): void {
    if (uid === 0) return;
    this.forget();
    const key = `${pid}/${startTime}`;
    const uids = this.shown.get(key) ?? new Map<number, number>();
    uids.set(uid, this.clock());
    this.shown.set(key, uids);
  }

  /** The users other than root and uid the process's files were shown as theirs lately. */
  othersThan(pid: number, startTime: number, uid: number): number[] {
    const since = this.clock() - OWNER_MEMORY_MS;
    const uids = [...(this.shown.get(`${pid}/${startTime}`) ?? [])];
    return uids.filter(([shown, at]) => shown !== uid && at >= since).map(([shown]) => shown);
  }

  /** Drops what no longer counts, once a second at most: getattr comes often. */
  private forget(): void {
    const now = this.clock();
    if (now - this.forgotAt < 1000) return;
    this.forgotAt = now;
    const before = now - OWNER_MEMORY_MS;
    for (const [key, uids] of this.shown) {
      for (const [uid, at] of uids) if (at < before) uids.delete(uid);
      if (uids.size === 0) this.shown.delete(key);
    }
  }
}
