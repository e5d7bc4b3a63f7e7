// Terminals and job control through libc: a terminal's modes and size, which process group is
// its foreground job, and what a restorer needs to hand its terminal to the restored process the
// way a shell hands it to a job it runs.

import { closeSync, constants as fsConstants, fstatSync, openSync, readlinkSync } from 'node:fs';
import { readStat } from '../proc/stat.js';
import { check, libc, rawIoctl } from './libc.js';
import { TERMIOS_SIZE } from './syscalls.js';

const rawTcgetpgrp = libc.func('int tcgetpgrp(int fd)');
const rawTcsetpgrp = libc.func('int tcsetpgrp(int fd, int pgrp)');
const rawGetpgrp = libc.func('int getpgrp()');
const rawSignal = libc.func('uintptr_t signal(int signal, uintptr_t handler)');

const TCGETS = 0x5401;
const TCSETS = 0x5402;
const TIOCGWINSZ = 0x5413;
const WINSIZE_SIZE = 8;
const SIG_DFL = 0;
const SIG_IGN = 1;

export interface TerminalModes {
  termios: Buffer;
  rows: number;
  columns: number;
  xpixels: number;
  ypixels: number;
}

/** A terminal's modes (TCGETS) and size (TIOCGWINSZ); null where fd is no terminal. */
export function readTerminal(fd: number): TerminalModes | null {
  const termios = Buffer.alloc(TERMIOS_SIZE);
  const size = Buffer.alloc(WINSIZE_SIZE);
  if ((rawIoctl(fd, TCGETS, termios) as number) !== 0 || (rawIoctl(fd, TIOCGWINSZ, size) as number) !== 0) return null;
  return { termios, rows: size.readUInt16LE(0), columns: size.readUInt16LE(2), xpixels: size.readUInt16LE(4), ypixels: size.readUInt16LE(6) };
}

/** A terminal's modes now (TCGETS). */
export function getTermios(fd: number): Buffer {
  const termios = Buffer.alloc(TERMIOS_SIZE);
  check(rawIoctl(fd, TCGETS, termios) as number, () => `ioctl(${fd}, TCGETS)`);
  return termios;
}

/** struct termios: c_cflag (the line's speed, character size, parity) at 8, c_line (the line discipline) at 16. */
const C_CFLAG = 8;
const C_LINE = 16;

/**
 * A program's modes for a terminal it did not set them on: its input, output and local modes and
 * control characters (raw or canonical, echo, signals, what Ctrl-C is), with the terminal's own
 * c_cflag and line discipline, which belong to the line (a serial line's speed), not the program.
 */
export function programModesOn(terminal: Buffer, program: Buffer): Buffer {
  const modes = Buffer.from(program);
  terminal.copy(modes, C_CFLAG, C_CFLAG, C_CFLAG + 4);
  modes[C_LINE] = terminal[C_LINE];
  return modes;
}

/** Sets a terminal's modes at once (TCSETS, tcsetattr's TCSANOW: never waiting for output a stopped terminal holds). */
export function setTermios(fd: number, termios: Buffer): void {
  check(rawIoctl(fd, TCSETS, termios) as number, () => `ioctl(${fd}, TCSETS)`);
}

/** Our controlling terminal, opened read-write (close-on-exec, not made ours: it is already); null if we have none. */
export function openControllingTerminal(): number | null {
  try {
    return openSync('/dev/tty', fsConstants.O_RDWR | fsConstants.O_NOCTTY | fsConstants.O_NONBLOCK);
  } catch {
    return null;
  }
}

/**
 * Our controlling terminal, by the name a standard stream of ours on it has (/dev/pts/3), else as
 * /dev/tty; null without one.
 */
export function controllingTerminalPath(): string | null {
  const { ttyNr } = readStat(process.pid);
  if (ttyNr === 0) return null;
  for (const fd of [0, 1, 2]) {
    try {
      // stat's tty_nr and st_rdev encode a device number alike (new_encode_dev).
      const stream = fstatSync(fd);
      if (stream.isCharacterDevice() && stream.rdev === ttyNr) return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      // Closed.
    }
  }
  const tty = openControllingTerminal();
  if (tty === null) return null;
  closeSync(tty);
  return '/dev/tty';
}

/** The terminal's foreground process group (tcgetpgrp). */
export function foregroundGroup(fd: number): number {
  return check(rawTcgetpgrp(fd) as number, () => `tcgetpgrp(${fd})`);
}

/** Makes pgrp the terminal's foreground process group (tcsetpgrp; from the background only with SIGTTOU ignored). */
export function setForegroundGroup(fd: number, pgrp: number): void {
  check(rawTcsetpgrp(fd, pgrp) as number, () => `tcsetpgrp(${fd}, ${pgrp})`);
}

/** Our process group (getpgrp). */
export function ownProcessGroup(): number {
  return rawGetpgrp() as number;
}

/**
 * Ignores a signal Node has no handler for (SIGTTOU, so that a process in the background may take
 * its terminal back), or gives it its default action again (a signal the restorer dies of as the
 * restored process did). Returns a function that puts the previous disposition back.
 */
export function setSignalDisposition(signal: number, disposition: 'ignore' | 'default'): () => void {
  const previous = rawSignal(signal, disposition === 'ignore' ? SIG_IGN : SIG_DFL) as number | bigint;
  return () => { rawSignal(signal, previous); };
}
