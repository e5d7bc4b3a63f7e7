// The owners a process's files were shown with. The kernel checks an open against the owner a
// getattr gave it (default_permissions), and imgfs freezes the process only after that: a process
// that runs a set-user-ID program in between is another user's by then, and its memory must not go
// to the user the check let in. fuse-native does not tell who is opening, and the time from a check
// to its open has no bound (requests queue behind slow ones), so an open is refused whenever the
// process was ever shown as owned by a user (not root) other than the one that owns the snapshot:
// whoever the check let in might be that user. Only for --allow-other: root may open anything.

/** How often processes that have exited are forgotten. */
const FORGET_EVERY_MS = 10_000;

export class OwnerHistory {
  /** By process (pid and start time): each uid (not root) its files were shown as. */
  private readonly shown = new Map<string, Set<number>>();
  private forgotAt = -Infinity;

  /** isAlive: whether pid is still the process started at startTime; clock: milliseconds. */
  constructor(
    private readonly isAlive: (pid: number, startTime: number) => boolean,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** A getattr showed the process's files as uid's. Root's need no note: only root passes them. */
  note(pid: number, startTime: number, uid: number): void {
    if (uid === 0) return;
    this.forgetExited();
    const key = `${pid}/${startTime}`;
    const uids = this.shown.get(key) ?? new Set<number>();
    uids.add(uid);
    this.shown.set(key, uids);
  }

  /** The users other than root and uid the process's files were ever shown as theirs. */
  othersThan(pid: number, startTime: number, uid: number): number[] {
    return [...(this.shown.get(`${pid}/${startTime}`) ?? [])].filter((shown) => shown !== uid);
  }

  private forgetExited(): void {
    const now = this.clock();
    if (now - this.forgotAt < FORGET_EVERY_MS) return;
    this.forgotAt = now;
    for (const key of this.shown.keys()) {
      const [pid, startTime] = key.split('/').map(Number);
      if (!this.isAlive(pid, startTime)) this.shown.delete(key);
    }
  }
}
