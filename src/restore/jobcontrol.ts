// A restore in the foreground runs the restored process the way a shell runs a job: in a process
// group of its own, which gets the terminal whenever the restorer's group has it. What the
// terminal sends (Ctrl-C, Ctrl-\, a resize) then reaches the process once, from the kernel, and
// not a second time through the restorer, which forwards only what is sent to itself. The restorer
// stays the shell's job: when the process stops at the terminal (Ctrl-Z, or reading it from the
// background), the restorer takes the terminal back and stops too, and `fg` or `bg` continue both.
// Run by a script (no job control: we are in its process group), the process joins that group
// instead, as the program would have been in it, and the group stops and goes on as one; as a
// script's background job, we leave the terminal alone. A job that is a pipeline
// (`imgfs restore task.img | less`) is the group of all its commands: the process joins it, as
// it was started in it, and leaves the terminal's modes to the other commands, which may have
// set theirs already.

import { closeSync, readlinkSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { descendsFrom, groupHasOthers } from '../proc/stat.js';
import { NativeError } from '../ptrace/errors.js';
import { kill, waitForChange } from '../ptrace/spawn.js';
import {
  foregroundGroup, getTermios, openControllingTerminal, ownProcessGroup, programModesOn, setForegroundGroup, setSignalDisposition, setTermios,
} from '../ptrace/terminal.js';

const { SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU, SIGWINCH } = osConstants.signals;

/**
 * A call on a terminal or a process that may be gone meanwhile (hung up, exited): then there is
 * nothing left to hand over, and the wait reports the end.
 */
function bestEffort(call: () => void): void {
  try {
    call();
  } catch (err) {
    if (!(err instanceof NativeError)) throw err;
  }
}

function signalQuietly(pid: number, signal: number): void {
  bestEffort(() => kill(pid, signal));
}

export type ProcessEnd = { exited: number } | { killed: number };

/**
 * Where the shell that runs us put us: a job of its own (an interactive shell's job control), the
 * background of a script (started with SIGINT and SIGQUIT ignored, as a shell without job control
 * starts `cmd &`), or a script's own process group.
 */
export type ShellPlace = 'job' | 'background' | 'script';

export class ForegroundJob {
  /** The restorer's controlling terminal; null without one (then there is no job control to take part in). */
  private readonly terminal: number | null;
  private readonly restoreTtou: () => void;
  /** The process's group, once it has one. */
  private group: number | null = null;
  /** The process is in our group, which is a script's or a pipeline's. */
  private sharesGroup: boolean;
  /** Our group is a pipeline's: the terminal's modes are its other commands'. */
  private inPipeline = false;
  /** It has had the terminal; it was told so (SIGWINCH). */
  private handed = false;
  private announced = false;
  /** The modes of the process's terminal, until set on ours the first time it gets it. */
  private modes: Buffer | null = null;
  /** Our terminal's modes before the process's were set: put back if the restore fails. */
  private ownModes: Buffer | null = null;

  /**
   * place: where the shell put us; in the background, we never touch the terminal. imagePipe: the
   * pipe the image comes in on (`cat task.img | imgfs restore -`), whose writer is no command the
   * process runs with.
   */
  constructor(private readonly warn: (line: string) => void, place: ShellPlace = 'job', private readonly imagePipe: string | null = null) {
    this.terminal = place === 'background' ? null : openControllingTerminal();
    this.sharesGroup = place !== 'job';
    // Taking the terminal back from the process's group is a tcsetpgrp from the background.
    this.restoreTtou = this.terminal === null ? () => undefined : setSignalDisposition(SIGTTOU, 'ignore');
  }

  /**
   * Whether the process joins our process group: in a script's, or in a pipeline's, the group of
   * the commands it runs with, which stop and go on together (asked as the process is given its
   * group: a command that fed us the image is gone by then).
   */
  joinsOurGroup(): boolean {
    if (!this.sharesGroup && this.terminal !== null) {
      // Not the process being made (our child, still in our group) nor the image's writer.
      this.inPipeline = groupHasOthers(ownProcessGroup(), process.pid, (other) => descendsFrom(other, process.pid) || this.writesImage(other));
      this.sharesGroup = this.inPipeline;
    }
    return this.sharesGroup;
  }

  /** Whether what the terminal sends reaches the process by itself, as it does our group. */
  get reachedByTerminal(): boolean {
    return this.sharesGroup;
  }

  /**
   * The restored process, in its own process group and about to run, gets the terminal if our
   * group has it (else the first time it has it), with the modes it had set on its own (an
   * editor's or a REPL's raw mode). Called before it runs, so that its first read of the terminal
   * finds it its own.
   */
  handOver(pid: number, modes: Buffer | null): void {
    // In a script's group, the terminal is the group's already: only the modes are the process's.
    this.group = this.sharesGroup ? ownProcessGroup() : pid;
    this.modes = this.inPipeline ? this.pipelineModes(modes) : modes;
    if (!this.inForeground()) return;
    try {
      this.give();
    } catch (err) {
      if (!(err instanceof NativeError)) throw err;
      this.abandon();
      this.warn(`the terminal cannot be handed to the process (${err.call}: ${err.code}): it runs in its background`);
    }
  }

  /**
   * Once it runs with the terminal, the first time: it is told its size may have changed
   * (SIGWINCH, ignored by default), so that it asks the new one's and redraws what this terminal
   * never showed.
   */
  announceTerminal(pid: number): void {
    if (!this.handed || this.announced) return;
    this.announced = true;
    signalQuietly(pid, SIGWINCH);
  }

  /** The restore failed: the terminal and its modes go back to the restorer, as far as it still has one. */
  abandon(): void {
    this.takeBack();
    if (this.ownModes) bestEffort(() => setTermios(this.terminal!, this.ownModes!));
  }

  /** Waits for the process to end, stopping and going on with it as one job. */
  async wait(pid: number): Promise<ProcessEnd> {
    for (;;) {
      const change = await waitForChange(pid);
      if (!('stopped' in change)) {
        this.takeBack();
        return change;
      }
      // Whoever stopped it continues it; in a script's or a pipeline's group, it stops and goes on with us.
      if (this.terminal === null || this.sharesGroup) continue;
      const hadTerminal = this.processHasTerminal();
      const wantsTerminal = change.stopped === SIGTTIN || change.stopped === SIGTTOU;
      if (!hadTerminal && !wantsTerminal) continue; // stopped in the background by a signal: as above
      if (!(wantsTerminal && this.inForeground())) {
        this.takeBack();
        // kill returns once we are continued, by `fg` (our group has the terminal) or `bg`; at
        // once where no shell is left to continue us (the kernel ignores SIGTSTP in an orphaned
        // process group, where SIGSTOP would stop us for good).
        kill(process.pid, SIGTSTP);
      }
      if (this.inForeground()) bestEffort(() => this.give());
      signalQuietly(-pid, SIGCONT);
      this.announceTerminal(pid);
    }
  }

  close(): void {
    if (this.terminal === null) return;
    this.restoreTtou();
    closeSync(this.terminal);
  }

  private writesImage(pid: number): boolean {
    try {
      return this.imagePipe !== null && readlinkSync(`/proc/${pid}/fd/1`) === this.imagePipe;
    } catch {
      return false;
    }
  }

  /**
   * The modes to set in a pipeline: none, the other commands' stay; one warning where the
   * process's differ from the terminal's now.
   */
  private pipelineModes(modes: Buffer | null): null {
    if (modes && this.inForeground()) {
      bestEffort(() => {
        const current = getTermios(this.terminal!);
        if (!programModesOn(current, modes).equals(current)) {
          this.warn('the terminal modes the process had set are not set again: it runs in a pipeline, whose other commands have set theirs');
        }
      });
    }
    return null;
  }

  private inForeground(): boolean {
    return this.terminal !== null && this.foreground() === ownProcessGroup();
  }

  private processHasTerminal(): boolean {
    return this.group !== null && this.foreground() === this.group;
  }

  /** The terminal's foreground group; -1 once it is gone (hung up). */
  private foreground(): number {
    try {
      return foregroundGroup(this.terminal!);
    } catch {
      return -1;
    }
  }

  /** The terminal to the process's group, with its modes the first time. */
  private give(): void {
    if (this.modes) {
      this.ownModes = getTermios(this.terminal!);
      setTermios(this.terminal!, programModesOn(this.ownModes, this.modes));
      this.modes = null;
    }
    setForegroundGroup(this.terminal!, this.group!);
    this.handed = true;
  }

  private takeBack(): void {
    if (this.processHasTerminal()) bestEffort(() => setForegroundGroup(this.terminal!, ownProcessGroup()));
  }
}
