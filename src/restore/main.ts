// `imgfs restore <image|->`: restores the image and, in the foreground, waits for the restored
// process like a shell waits for a program (its exit status becomes ours, the signals sent to
// us reach it); with --detach, prints its pid and returns. Every failure is one line on stderr and
// exit status 1, and leaves no process behind.

import { closeSync, open, readlinkSync, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { kill } from '../ptrace/spawn.js';
import { prlimit } from '../ptrace/libc.js';
import { RLIMIT_NAMES } from '../extension.js';
import { controllingTerminalPath, setSignalDisposition } from '../ptrace/terminal.js';
import { readStat } from '../proc/stat.js';
import { DEV_NULL } from './process.js';
import { keepIgnoring, signalsIgnoredAtStart } from '../startsignals.js';
import { ForegroundJob, type ProcessEnd, type ShellPlace } from './jobcontrol.js';
import { interrupted } from './errors.js';
import { fileErrorMessage } from '../errors.js';
import { restoreImage, type IdChoice } from './restore.js';
import { standardInputProblem } from '../imagestream.js';
import { constants as osConstants } from 'node:os';

export interface RestoreIo {
  out(text: string): void;
  /** Writes to standard output at once, or throws: a pid nobody could read is a process nobody knows of. */
  outNow(text: string): void;
  err(text: string): void;
}

const processIo: RestoreIo = {
  out: (text) => { process.stdout.write(text); },
  outNow: (text) => { writeSync(1, text); },
  err: (text) => { process.stderr.write(text); },
};

const RESTORE_USAGE = `usage: imgfs restore <image|-> [--detach] [--same-pid | --new-pid] [--pid-ns] [--anon-fallback] [--host-clocks]
  <image>          a dump image (cp /mnt/img/<pid>/dump task.img); - reads it from standard input
  --detach         print the restored process's pid and return instead of waiting for it
                   (the process gets a session of its own; by default it runs as this shell's
                   job, with the terminal)
  --same-pid       restore with the dumped pid and thread ids, or fail if one is in use (with
                   --pid-ns, a pid in use is had in a PID namespace instead; by default they
                   are taken where they are free, as root, and where the pid is in use the
                   process gets a new one, with a warning)
  --new-pid        restore with new ids even where the dumped ones are free
  --pid-ns         where the dumped pid is in use, restore the process in a PID namespace of
                   its own, in which it has its dumped pid and thread ids (as root): a program
                   that remembers its pid (asyncio, dnsmasq, redis) goes on as before
  --anon-fallback  map a file that changed or vanished since the dump as anonymous memory
                   (with a warning) instead of failing
  --host-clocks    let the process see this machine's CLOCK_MONOTONIC and CLOCK_BOOTTIME (by
                   default, as root, they go on from their values at the dump, in a time namespace)
environment:
  IMGFS_USERFAULTFD=0  write pages with process_vm_writev instead of placing them through a
                   userfaultfd (what happens anyway where the kernel refuses one)
`;

/**
 * The signals the restorer passes on to the process when they are sent to itself (`kill`,
 * `timeout`, the shell's `kill %1`): every one a program may be sent and handle, but those of job
 * control, which the restorer takes part in itself (./jobcontrol.ts), and SIGPIPE and SIGCHLD,
 * which are about the restorer's own pipes and children.
 */
const FORWARDED_SIGNALS: NodeJS.Signals[] = [
  'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGTERM', 'SIGURG', 'SIGXCPU', 'SIGXFSZ',
  'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR',
];
/** Those that, sent while the restore is under way, abandon it: they would end the program. */
const ABANDONING_SIGNALS: NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM'];

interface Options {
  file: string;
  detach: boolean;
  ids: IdChoice;
  anonFallback: boolean;
  hostClocks: boolean;
  pidNamespace: boolean;
}

function parseOptions(argv: string[]): Options | string {
  const options: Options = { file: '', detach: false, ids: 'preferred', anonFallback: false, hostClocks: false, pidNamespace: false };
  const files: string[] = [];
  let optionsEnded = false; // after `--`: an image may begin with '-'
  for (const arg of argv) {
    if (optionsEnded || arg === '-' || !arg.startsWith('-')) files.push(arg);
    else if (arg === '--') optionsEnded = true;
    else if (arg === '--detach') options.detach = true;
    else if (arg === '--same-pid' || arg === '--new-pid') {
      const ids = arg === '--same-pid' ? 'required' : 'new';
      if (options.ids !== 'preferred' && options.ids !== ids) return '--same-pid and --new-pid exclude each other';
      options.ids = ids;
    }
    else if (arg === '--anon-fallback') options.anonFallback = true;
    else if (arg === '--host-clocks') options.hostClocks = true;
    else if (arg === '--pid-ns') options.pidNamespace = true;
    else return `unknown option '${arg}'`;
  }
  if (options.pidNamespace && options.ids === 'new') return '--pid-ns and --new-pid exclude each other';
  // An image executed through binfmt_misc is given first, its command line's words after it.
  if (files.length !== 1) return files.length === 0 ? 'no image given' : `'${files[1]}' after the image '${files[0]}': one image at a time, and no arguments for it`;
  options.file = files[0];
  return options;
}

/** The message of an error, without Node's "syscall 'path'" suffix on file errors. */
function messageOf(err: unknown): string {
  return fileErrorMessage(err) ?? (err instanceof Error ? err.message : String(err));
}

/** `imgfs restore ...`; argv holds the arguments after "restore". Returns the exit status. */
export async function restoreMain(argv: string[], io: RestoreIo = processIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(RESTORE_USAGE);
    return 0;
  }
  const options = parseOptions(argv);
  if (typeof options === 'string') {
    io.err(`imgfs restore: ${options} (imgfs restore --help)\n`);
    return 2;
  }
  // Ignored by whoever started us (nohup): neither passed on nor abandoning the restore.
  const forwarded = keepIgnoring(FORWARDED_SIGNALS);
  const fromStdin = options.file === '-';
  const stdinProblem = fromStdin ? standardInputProblem('imgfs restore') : undefined;
  if (stdinProblem !== undefined) {
    io.err(`imgfs restore: -: ${stdinProblem}\n`);
    return 1;
  }
  const place = placeInShell(options);
  // Until the restore is done, the abandoning signals stop it (and the stub dies with it); the
  // others are passed on once the process runs, as if sent just after. One listener throughout:
  // between two, a signal would meet its default action and end the restorer. In a script's or a
  // pipeline's process group, what the terminal sends reaches the process itself.
  const abort = new AbortController();
  const received: NodeJS.Signals[] = [];
  let restored: number | null = null;
  let reachesItself: NodeJS.Signals[] = [];
  const onSignal = (signal: NodeJS.Signals) => {
    if (restored !== null) return reachesItself.includes(signal) ? undefined : passOn(restored, signal);
    received.push(signal);
    if (ABANDONING_SIGNALS.includes(signal)) abort.abort(signal);
  };
  for (const signal of forwarded) process.on(signal, onSignal);
  try {
    const run = await restoreReporting(options, place, fromStdin, abort.signal, io);
    if (run === null) {
      // Interrupted (Ctrl-C): ended by that signal once the stub is gone, as a program is, so that
      // a script running the restore stops too (a shell looks at how its child ended).
      return abort.signal.aborted ? endLike({ killed: osConstants.signals[abort.signal.reason as NodeJS.Signals] }) : 1;
    }
    restored = run.pid;
    if (run.job?.reachedByTerminal) reachesItself = TERMINAL_SIGNALS;
    for (const signal of received) if (!reachesItself.includes(signal)) passOn(run.pid, signal);
    if (!run.job) {
      // Detached: a signal that would have abandoned the restore came as the process started. It
      // got the signal; the restorer ends as an interrupted one does, not with a pid that says
      // all went well.
      const abandoning = received.find((name) => ABANDONING_SIGNALS.includes(name));
      if (abandoning) {
        io.err(`imgfs restore: ${options.file}: interrupted by ${abandoning} as pid ${run.pid} started: passed on to it\n`);
        return endLike({ killed: osConstants.signals[abandoning] });
      }
      try {
        io.outNow(`${run.pid}\n`);
      } catch (err) {
        // Nobody would know of the process: it must not run on.
        passOn(run.pid, 'SIGKILL');
        io.err(`imgfs restore: ${options.file}: the pid cannot be written to standard output (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): pid ${run.pid} was killed\n`);
        return 1;
      }
      return 0;
    }
    try {
      // What the terminal sends reaches the process by itself (./jobcontrol.ts); what is sent to
      // us (a shell's `kill`, `timeout`'s SIGTERM) is passed on by onSignal.
      run.job.announceTerminal(run.pid);
      return endLike(await run.job.wait(run.pid));
    } finally {
      run.job.close();
    }
  } finally {
    for (const signal of forwarded) process.off(signal, onSignal);
  }
}

/**
 * Restores the image; on failure, says why in one line and returns null. job: the foreground job
 * the process is (null with --detach).
 */
async function restoreReporting(
  options: Options, place: ShellPlace, fromStdin: boolean, signal: AbortSignal, io: RestoreIo,
): Promise<{ pid: number; job: ForegroundJob | null } | null> {
  const warn = (line: string) => io.err(`imgfs restore: warning: ${line}\n`);
  const job = options.detach ? null : new ForegroundJob(warn, place, fromStdin ? standardInput() : null);
  const ignored = signalsIgnoredAtStart();
  let fd: number | undefined;
  try {
    fd = fromStdin ? 0 : await openImage(options.file, signal);
    const pid = await restoreImage(fd, {
      anonFallback: options.anonFallback,
      hostClocks: options.hostClocks,
      ids: options.ids,
      pidNamespace: options.pidNamespace,
      // The process's standard input would be the image's pipe: the terminal instead, if any.
      stdinInstead: fromStdin ? controllingTerminalPath() ?? DEV_NULL : null,
      detached: options.detach,
      // Without job control, `cmd &` runs in the script's group too.
      joinsOurGroup: () => job?.joinsOurGroup() ?? false,
      // IMGFS_USERFAULTFD=0 writes every page with process_vm_writev, as on a kernel that refuses
      // userfaultfd (the tests cover that path with it).
      userfaultfd: process.env.IMGFS_USERFAULTFD !== '0',
      ignoredAtStart: new Set([...ignored].map((name) => osConstants.signals[name])),
      warn,
      signal,
      beforeRun: job ? (restored, modes) => job.handOver(restored, modes) : undefined,
    });
    // The restore's last steps run in one go: a signal that came meanwhile has its handler run
    // now, too late to stop the restore. It reaches the process instead, as if sent just after.
    await signalsHandled();
    return { pid, job };
  } catch (err) {
    job?.abandon();
    job?.close();
    // A Ctrl-C that also ended the image's writer may fail the read before its handler has run.
    await signalsHandled();
    io.err(`imgfs restore: ${options.file}: ${signal.aborted ? interrupted(signal).message : messageOf(err)}\n`);
    return null;
  } finally {
    if (fd !== undefined && !fromStdin) closeSync(fd);
  }
}

/**
 * Opens the image off the main thread: open(2) of a FIFO waits for a writer, and meanwhile no
 * signal handler of ours could run (Ctrl-C would do nothing). A signal that abandons the restore
 * ends the wait.
 */
async function openImage(file: string, signal: AbortSignal): Promise<number> {
  if (signal.aborted) throw interrupted(signal);
  const opening = promisify(open)(file, 'r');
  opening.catch(() => undefined); // lost to the signal: nobody waits for it any more
  const abandoned = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(interrupted(signal)), { once: true }));
  return Promise.race([opening, abandoned]);
}

/**
 * Resolves once the signals that came before the call have had their handlers run. libuv reads
 * them in the event loop's poll phase, which a single setImmediate may not reach (resumed inside
 * that phase, the immediate runs first): the second immediate comes after the next poll.
 */
function signalsHandled(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

/** What our standard input is (pipe:[1234]); null if it is closed. */
function standardInput(): string | null {
  try {
    return readlinkSync('/proc/self/fd/0');
  } catch {
    return null;
  }
}

/** Where the shell that runs us put us (./jobcontrol.ts). */
function placeInShell(options: Options): ShellPlace {
  if (options.detach) return 'job';
  const ignored = signalsIgnoredAtStart();
  if (ignored.has('SIGINT') && ignored.has('SIGQUIT')) return 'background';
  // A script's group is one we share with our parent, in the foreground of our terminal: one
  // without a terminal (ssh without a pty, a service manager) has nothing to send us signals.
  const own = readStat(process.pid);
  return own.pgrp === readStat(process.ppid).pgrp && own.ttyNr !== 0 && own.tpgid === own.pgrp ? 'script' : 'job';
}

/**
 * What a terminal sends its foreground process group (and SIGHUP, at hang-up): in a script's group
 * the process gets it too. Other signals sent to the whole group reach it twice (see README).
 */
const TERMINAL_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGQUIT', 'SIGWINCH', 'SIGHUP'];

/** Sends the process a signal sent to the restorer. */
function passOn(pid: number, signal: NodeJS.Signals): void {
  try {
    kill(pid, osConstants.signals[signal]);
  } catch {
    // It has just exited: the wait for it reports it.
  }
}

/**
 * Ends the restorer as the process ended, so that whoever waits for it (a shell, a script) sees
 * what it would have seen of the original: its exit status, or its death by a signal, which a
 * shell reports ("Killed", "Segmentation fault") and a script stopped by Ctrl-C stops on. A
 * signal the restorer cannot die of is reported as 128 + its number, as shells do.
 */
function endLike(end: ProcessEnd): number {
  if ('exited' in end) return end.exited;
  // The process may have dumped core; the restorer (Node) must not.
  prlimit(0, RLIMIT_NAMES.indexOf('RLIMIT_CORE'), { soft: 0n, hard: 0n });
  setSignalDisposition(end.killed, 'default');
  kill(process.pid, end.killed);
  return 128 + end.killed;
}
