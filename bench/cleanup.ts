// Everything the bench starts or creates registers how to undo it here; the steps run in reverse
// order (commands before targets, targets before the mount, the mount before its directory) at
// the end of the run, on failure, and on SIGINT/SIGTERM.

interface Step {
  what: string;
  undo: () => Promise<void>;
}

export interface Registration {
  /** Runs the undo step now (once) and forgets it. */
  now(): Promise<void>;
  /** Forgets the step without running it: the thing is already gone. */
  forget(): void;
}

class Cleanup {
  private readonly steps: Step[] = [];
  private running: Promise<void> | undefined;

  add(what: string, undo: () => Promise<void>): Registration {
    const step: Step = { what, undo };
    this.steps.push(step);
    const forget = () => {
      const index = this.steps.indexOf(step);
      if (index >= 0) this.steps.splice(index, 1);
      return index >= 0;
    };
    return {
      now: async () => {
        if (forget()) await step.undo();
      },
      forget: () => { forget(); },
    };
  }

  /** Runs every registered step, newest first; a failing step is reported and the rest still run.
   *  Concurrent callers (the normal end of the run and a signal) share one pass. */
  runAll(): Promise<void> {
    this.running ??= (async () => {
      for (let step = this.steps.pop(); step; step = this.steps.pop()) {
        try {
          await step.undo();
        } catch (err) {
          process.stderr.write(`bench: clean-up failed: ${step.what}: ${(err as Error).message}\n`);
        }
      }
    })().finally(() => { this.running = undefined; });
    return this.running;
  }
}

export const cleanup = new Cleanup();

/** On Ctrl-C, SIGTERM or a crash: undo everything, then exit. A closed stdout or stderr (the
 *  bench piped into `head`) must not crash the bench past its clean-up either: further output
 *  is dropped. */
export function cleanUpOnExit(): void {
  const exitAfterCleanup = (status: number) => cleanup.runAll().finally(() => process.exit(status));
  for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      process.stderr.write(`bench: ${signal}: cleaning up\n`);
      exitAfterCleanup(status);
    });
  }
  for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
    process.once(event, (err: unknown) => {
      process.stderr.write(`bench: ${(err as Error)?.stack ?? String(err)}\n`);
      exitAfterCleanup(1);
    });
  }
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
}
