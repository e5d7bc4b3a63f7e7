// A log that writes a line said again and again back to back once, then how many times it came
// since, as syslog does: a reader polling a dump it may not read yet (--no-freeze) or a script
// retrying a refused open would otherwise fill the log with one line per attempt.

/** How long repeats of a line may go uncounted in the log. */
const COUNT_AFTER_MS = 10_000;

export interface SqueezedLog {
  log(line: string): void;
  /** Writes the count of repeats not yet written (at exit). */
  flush(): void;
}

export function squeezeRepeats(write: (line: string) => void, countAfterMs = COUNT_AFTER_MS): SqueezedLog {
  let last: string | undefined;
  let repeats = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (repeats === 0) return;
    write(`the line before came ${repeats} more time${repeats === 1 ? '' : 's'}`);
    repeats = 0;
  };
  return {
    log(line) {
      if (line === last) {
        repeats++;
        timer ??= setTimeout(flush, countAfterMs).unref();
        return;
      }
      flush();
      last = line;
      write(line);
    },
    flush,
  };
}
