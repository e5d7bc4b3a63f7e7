// The stdout lines of a child process, as they arrive, and a wait for the first one that matches.

import type { ChildProcess } from 'node:child_process';

export class OutputLines {
  readonly seen: string[] = [];
  stderr = '';
  private partial = '';
  private stdoutEnded = false;
  private readonly waiters = new Set<() => void>();
  /** Resolves once the stderr pipe ends: every process that held it (the child's own too) closed it. */
  readonly stderrEnded: Promise<void>;

  /** `who` names the process in error messages, e.g. "target counter (pid 123)". */
  constructor(private readonly proc: ChildProcess, private readonly who: string) {
    this.stderrEnded = new Promise((resolve) => proc.stderr!.on('end', () => resolve()));
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop()!;
      this.seen.push(...parts);
      this.wake();
    });
    proc.stdout!.on('end', () => {
      this.stdoutEnded = true;
      this.wake();
    });
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => { this.stderr += chunk; });
    proc.on('exit', () => this.wake());
  }

  /** The first line from index `from` on that matches; rejects once the process is gone or on time-out. */
  waitFor(match: (line: string) => boolean, opts: { from?: number; timeoutMs: number }): Promise<string> {
    const from = opts.from ?? 0;
    return new Promise((resolve, reject) => {
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      const check = () => {
        const line = this.seen.slice(from).find(match);
        if (line !== undefined) finish(() => resolve(line));
        else if (this.stdoutEnded && (this.proc.exitCode !== null || this.proc.signalCode !== null)) {
          finish(() => reject(new Error(`${this.who} exited (${this.proc.exitCode ?? this.proc.signalCode}) without the expected line; ${this.tail()}`)));
        }
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`${this.who} printed no expected line within ${opts.timeoutMs} ms; ${this.tail()}`))), opts.timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  private tail(): string {
    return `stdout so far ${JSON.stringify(this.seen.slice(-5))}; stderr ${this.stderr}`;
  }

  private wake(): void {
    for (const wake of this.waiters) wake();
  }
}
