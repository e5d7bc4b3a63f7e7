// A program on a terminal, restored from an interactive shell on a terminal: the restore runs it
// as the shell's job. Here a real pty (script(1)) runs an interactive bash, in which the test types
// what a user would: it starts restore_tty (raw modes, keys from /dev/tty, counting Ctrl-C), the
// test dumps it and kills it, then types `imgfs restore` there. The restored program finds its
// terminal modes, its /dev/tty and the terminal's foreground; one Ctrl-C reaches it once; Ctrl-Z
// stops it and the restorer as one job that `fg` continues; its exit status is the restorer's.
// The tests run one at a time: each drives a shell on a pty of its own, typing to it.

import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { readStat } from '../src/proc/stat.js';
import { statusMask } from '../src/proc/status.js';
import { buildTarget } from './helpers/build.js';
import { makeTempDir } from './helpers/files.js';
import { taskStatus } from './helpers/groundtruth.js';
import { mountImgfs, repoRoot } from './helpers/mount.js';
import { readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { runOk } from './helpers/run.js';
import { waitForExit } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';

const ICANON = 0o2;
const ECHO = 0o10;
/** c_lflag's offset in struct termios. */
const LFLAG = 12;

/** An interactive bash on a pty of its own: what it prints, and a keyboard. */
class Terminal {
  readonly proc: ChildProcess;
  private output = '';

  constructor(rows: number, columns: number) {
    // script gives bash a pty as its controlling terminal; stty sets the pty's size first.
    const shell = `stty rows ${rows} cols ${columns}; exec bash --norc --noprofile -i`;
    this.proc = spawn('script', ['-qfec', shell, '/dev/null'], {
      cwd: repoRoot, env: { ...process.env, PS1: '$ ', TERM: 'dumb' }, stdio: ['pipe', 'pipe', 'pipe'], detached: true,
    });
    this.proc.stdout!.on('data', (chunk: Buffer) => { this.output += chunk.toString('latin1'); });
    this.proc.stderr!.on('data', (chunk: Buffer) => { this.output += chunk.toString('latin1'); });
  }

  type(keys: string): void {
    this.proc.stdin!.write(keys);
  }

  /** Where the output is now: a later waitFor looks only past it. */
  mark(): number {
    return this.output.length;
  }

  /** The first match of pattern in the output past `from`. */
  async waitFor(pattern: RegExp, from: number): Promise<RegExpExecArray> {
    try {
      return await (waitUntil(`${pattern} on the terminal`, () => pattern.exec(this.output.slice(from)) ?? undefined, 20_000, 20) as Promise<RegExpExecArray>);
    } catch (err) {
      throw new Error(`${(err as Error).message}; it shows ${JSON.stringify(this.output.slice(from))}`);
    }
  }

  since(from: number): string {
    return this.output.slice(from);
  }
}

function openTerminal(t: ExecutionContext, rows: number, columns: number): Terminal {
  const terminal = new Terminal(rows, columns);
  t.teardown(async () => {
    try {
      process.kill(-terminal.proc.pid!, 'SIGKILL'); // script, bash and what runs in its session
    } catch {
      // Gone.
    }
    await waitForExit(terminal.proc);
  });
  return terminal;
}

/**
 * The live process running program (the restored one: the original is dead by then), once the
 * restore has let it go (its process group is set by then).
 */
function runningProgram(program: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/exe`) === program && !stateOf(Number(entry)).startsWith('Z') && taskStatus(Number(entry)).tracerPid === 0) return Number(entry);
    } catch {
      // Gone, or a kernel thread.
    }
  }
  return undefined;
}

/** stat's state and what follows it: state, ppid, pgrp, ... */
function stateOf(pid: number): string {
  return readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1];
}

/**
 * Starts restore_tty in the terminal's shell, presses Ctrl-C once, dumps it to a file through a
 * mount and kills it.
 */
async function dumpOnTerminal(t: ExecutionContext, terminal: Terminal, program: string): Promise<string> {
  const image = path.join(await makeTempDir(t, 'imgfs-tty-'), 'task.img');
  const mnt = await mountImgfs(t);
  let from = terminal.mark();
  terminal.type(`${program}\n`);
  const pid = Number((await terminal.waitFor(/ready (\d+)/, from))[1]);
  from = terminal.mark();
  terminal.type('\x03');
  await terminal.waitFor(/interrupted sigint 1/, from);
  await runOk('cp', [path.join(mnt.dir, String(pid), 'dump'), image]);
  from = terminal.mark();
  process.kill(pid, 'SIGKILL');
  // The shell's prompt again: what is typed before it may go to the killed program's last read or
  // be flushed with the terminal's modes.
  await terminal.waitFor(/Killed\r\n[^\n]*[#$] $/, from);
  return image;
}

/** A terminal of that size whose shell ran restore_tty, dumped (dumpOnTerminal). */
async function dumpedOnTerminal(t: ExecutionContext, rows: number, columns: number): Promise<{ program: string; terminal: Terminal; image: string }> {
  const program = await buildTarget('restore_tty');
  const terminal = openTerminal(t, rows, columns);
  return { program, terminal, image: await dumpOnTerminal(t, terminal, program) };
}

test.serial('restored from a shell on a terminal: modes, /dev/tty, foreground, one Ctrl-C each, Ctrl-Z and fg, exit status', async (t) => {
  const { program, terminal, image } = await dumpedOnTerminal(t, 40, 100);

  const ext = await readImageExtension(image);
  const fds = new Map(ext.fds.map((fd) => [fd.fd, fd]));
  for (const fd of [0, 3]) {
    const state = fds.get(fd)?.terminal;
    t.truthy(state, `fd ${fd} has its terminal's state`);
    t.like(state, { rows: 40, columns: 100, controlling: true, foreground: true }, `fd ${fd}`);
    t.is(state!.termios.readUInt32LE(LFLAG) & (ICANON | ECHO), 0, `fd ${fd}: the program's modes, no canonical input, no echo`);
  }
  t.is(fds.get(3)?.target, '/dev/tty');
  t.regex(await showText(image), /terminal: controlling, foreground; 40x100/);

  let from = terminal.mark();
  terminal.type(`${process.execPath} --import=tsx src/cli.ts restore ${image}\n`);
  // Told of its (new) terminal's size once it runs: the size of this one.
  await terminal.waitFor(/winch 40 100/, from);
  const restored = (await waitUntil('the restored program', () => runningProgram(program)))!;
  from = terminal.mark();
  terminal.type('a');
  await terminal.waitFor(/key a sigint 1 icanon 0 echo 0 foreground 1 stdin \/dev\/pts\/\d+\r/, from);

  // One Ctrl-C: the program gets one SIGINT, from the terminal, and none forwarded by the restorer.
  terminal.type('\x03');
  await terminal.waitFor(/interrupted sigint 2/, from);
  from = terminal.mark();
  terminal.type('b');
  await terminal.waitFor(/key b sigint 2 /, from);

  // A SIGINT sent to the restorer itself is forwarded: once.
  const restorer = readStat(restored).ppid;
  t.regex(readFileSync(`/proc/${restorer}/cmdline`, 'latin1'), /restore/);
  process.kill(restorer, 'SIGINT');
  await terminal.waitFor(/interrupted sigint 3/, from);

  // Ctrl-Z stops the program and the restorer as one job, and the shell has its terminal back.
  from = terminal.mark();
  terminal.type('\x1a');
  await terminal.waitFor(/Stopped/, from);
  await waitUntil('the restorer stopped too', () => stateOf(restorer).startsWith('T'));
  from = terminal.mark();
  terminal.type('echo shell\n');
  await terminal.waitFor(/\nshell\r\n/, from);
  from = terminal.mark();
  terminal.type('fg\n');
  await waitUntil('the program running again', () => !stateOf(restored).startsWith('T'));
  terminal.type('c');
  await terminal.waitFor(/key c sigint 3 icanon 0 echo 0 foreground 1/, from);

  // Its exit status is the restorer's, which `fg` returns; the shell has its terminal again.
  terminal.type('q');
  await waitUntil('the restorer to exit', () => !existsSync(`/proc/${restorer}`));
  from = terminal.mark();
  terminal.type('echo "status $?"\n');
  await terminal.waitFor(/\nstatus 7\r\n/, from);
});

test.serial('restored off any terminal: the controlling terminal it kept open becomes /dev/null, with a warning', async (t) => {
  const { image } = await dumpedOnTerminal(t, 24, 80);
  // The tests' restorers run in a session of their own, without a controlling terminal.
  const restorer = startRestorer(t, [image]);
  t.is(await restorer.exited, 2, 'its read of fd 3 found the end of /dev/null');
  t.regex(restorer.stderr(), /warning: fd 3 \(\/dev\/tty\): cannot be reopened \(ENXIO\): replaced by \/dev\/null\n/);
});

test.serial('restored from a pipe in a shell on a terminal (`cat task.img | imgfs restore -`): its standard input is the terminal, not the image\'s pipe', async (t) => {
  const { terminal, image } = await dumpedOnTerminal(t, 24, 80);
  let from = terminal.mark();
  terminal.type(`cat ${image} | ${process.execPath} --import=tsx src/cli.ts restore -\n`);
  await terminal.waitFor(/winch 24 80/, from);
  from = terminal.mark();
  terminal.type('a');
  await terminal.waitFor(/key a sigint 1 icanon 0 echo 0 foreground 1 stdin \/dev\/pts\/\d+\r/, from);
  terminal.type('q');
  from = terminal.mark();
  terminal.type('echo "status $?"\n');
  await terminal.waitFor(/\nstatus 7\r\n/, from);
  t.false(terminal.since(0).includes('fd 0'), 'no warning about its standard input');
});

test.serial('restored from a pipe off any terminal: the standard input it had on a terminal becomes /dev/null, with a warning', async (t) => {
  const { image } = await dumpedOnTerminal(t, 24, 80);
  const restorer = startRestorer(t, ['-'], { stdinFile: image });
  t.is(await restorer.exited, 2, 'its read of fd 3 found the end of /dev/null');
  t.regex(restorer.stderr(), /warning: fd 0 \(\/dev\/pts\/\d+\): the image came on the restorer's standard input, and it has no terminal to give instead: \/dev\/null in its place\n/);
});

test.serial('restored as a script\'s background job (`imgfs restore img &`, no job control): it joins the script\'s process group, which keeps the terminal, and reads it', async (t) => {
  const { program, terminal, image } = await dumpedOnTerminal(t, 24, 80);
  t.teardown(() => { const pid = runningProgram(program); if (pid) process.kill(pid, 'SIGKILL'); });
  const from = terminal.mark();
  // The script goes on once the restore is done (the restorer's child runs the program).
  const restoredYet = `[ "$(readlink /proc/$(pgrep -P $! -x restore_tty)/exe)" = ${program} ]`;
  terminal.type(`bash -c 'bin/imgfs restore ${image} > /dev/null 2>&1 & until ${restoredYet}; do sleep 0.1; done; p=rea; echo "\${p}dy"; wait $!; echo "after $?"'\n`);
  await terminal.waitFor(/ready\r\n/, from);
  const restored = readStat(runningProgram(program)!);
  const script = readStat(readStat(restored.ppid).ppid);
  t.is(restored.pgrp, script.pgrp, 'in the script\'s process group');
  t.is(restored.tpgid, script.pgrp, 'which keeps the terminal');
  // Its modes were not set (it is no job of its own): a line, then it reads the q.
  terminal.type('q\n');
  await terminal.waitFor(/after 7\r\n/, from);
});

test.serial('restored under nohup: the process ignores SIGHUP, where it had left it at its default, as nohup makes a program do', async (t) => {
  const { program, terminal, image } = await dumpedOnTerminal(t, 24, 80);
  t.is((await readImageExtension(image)).sigactions[0].handler, 0n, 'SIGHUP at its default in the image');
  let from = terminal.mark();
  terminal.type(`nohup bin/imgfs restore ${image} > /dev/null 2>&1\n`);
  const restored = (await waitUntil('the restored program', () => runningProgram(program)))!;
  t.is(statusMask(readFileSync(`/proc/${restored}/status`, 'latin1'), 'SigIgn') & 1n, 1n, 'SIGHUP ignored');
  terminal.type('q');
  await waitUntil('the program to end', () => runningProgram(program) === undefined);
  from = terminal.mark();
  terminal.type('echo "status $?"\n');
  await terminal.waitFor(/status 7\r\n/, from);
});

test.serial('restored by a script (no job control): the process joins the script\'s process group, one Ctrl-C reaches it once and the script too, and the script goes on with its status', async (t) => {
  const { program, terminal, image } = await dumpedOnTerminal(t, 24, 80);
  let from = terminal.mark();
  // The script traps SIGINT to show that it got the Ctrl-C too, as it would with the program.
  terminal.type(`bash -c 'trap "echo script-got-sigint" INT; ${process.execPath} --import=tsx src/cli.ts restore ${image}; echo "after $?"'\n`);
  const restored = readStat((await waitUntil('the restored program', () => runningProgram(program)))!);
  const restorer = readStat(restored.ppid);
  const script = readStat(restorer.ppid);
  t.is(restored.pgrp, script.pgrp, 'in the script\'s process group');
  t.is(restorer.pgrp, script.pgrp);
  t.is(restored.tpgid, script.pgrp, 'which has the terminal');
  from = terminal.mark();
  terminal.type('a');
  await terminal.waitFor(/key a sigint 1 icanon 0 echo 0 foreground 1/, from);
  terminal.type('\x03');
  await terminal.waitFor(/interrupted sigint 2/, from);
  from = terminal.mark();
  terminal.type('b');
  await terminal.waitFor(/key b sigint 2 /, from);
  terminal.type('q');
  await terminal.waitFor(/script-got-sigint\r\n(.|\r|\n)*after 7\r\n/, from);
});

test.serial('restored into a pipeline (`imgfs restore img | pager`): the process joins the pipeline\'s job, whose other command keeps the terminal and its own modes, and one Ctrl-C reaches them all', async (t) => {
  const [counter, pager] = await Promise.all([buildTarget('counter'), buildTarget('restore_tty')]);
  const terminal = openTerminal(t, 24, 80);
  const dir = await makeTempDir(t, 'imgfs-pipeline-');
  const image = path.join(dir, 'task.img');
  const mnt = await mountImgfs(t);
  // Dumped as the terminal's foreground job, in the modes the shell gives a command.
  let from = terminal.mark();
  terminal.type(`${counter}\n`);
  await terminal.waitFor(/tick 1\r\n/, from);
  const original = runningProgram(counter)!;
  await runOk('cp', [path.join(mnt.dir, String(original), 'dump'), image]);
  from = terminal.mark();
  process.kill(original, 'SIGKILL');
  await terminal.waitFor(/Killed\r\n[^\n]*[#$] $/, from);
  t.like((await readImageExtension(image)).fds.find((fd) => fd.fd === 0)?.terminal, { foreground: true });

  from = terminal.mark();
  const warnings = path.join(dir, 'warnings');
  terminal.type(`${process.execPath} --import=tsx src/cli.ts restore ${image} 2>${warnings} | ${pager}\n`);
  const pagerPid = Number((await terminal.waitFor(/ready (\d+)/, from))[1]);
  const restored = readStat((await waitUntil('the restored program', () => runningProgram(counter)))!);
  const restorer = readStat(restored.ppid);
  t.is(restored.pgrp, restorer.pgrp, 'in the pipeline\'s process group');
  t.is(readStat(pagerPid).pgrp, restorer.pgrp);
  t.is(restored.tpgid, restorer.pgrp, 'which keeps the terminal');
  from = terminal.mark();
  terminal.type('a');
  await terminal.waitFor(/key a sigint 0 icanon 0 echo 0 foreground 1 /, from);
  await waitUntil('the warning', () => readFileSync(warnings, 'utf8').includes('pipeline'));
  t.regex(readFileSync(warnings, 'utf8'), /warning: the terminal modes the process had set are not set again: it runs in a pipeline, whose other commands have set theirs\n/);

  // Ctrl-C: the pager counts it, the counter dies of it, and the restorer with it.
  terminal.type('\x03');
  await terminal.waitFor(/interrupted sigint 1/, from);
  await waitUntil('the restored program to end', () => runningProgram(counter) === undefined);
  terminal.type('q');
  from = terminal.mark();
  terminal.type('echo "status ${PIPESTATUS[*]}"\n');
  await terminal.waitFor(/\nstatus 130 7\r\n/, from);
});
