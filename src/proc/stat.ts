// /proc/<pid>/stat: the fields a dumper needs to identify a process and fill binfmt_mm_image.

import fs from 'node:fs';
import { ProcParseError } from './errors.js';
import { statusNumber } from './status.js';

export const PF_KTHREAD = 0x00200000;

export interface ProcStat {
  pid: number;
  comm: string;
  /** One character: R, S, D, Z, T, t, X, I, ... */
  state: string;
  ppid: number;
  /** Process group and session. */
  pgrp: number;
  session: number;
  /** The controlling terminal's device number (the kernel's encoding: minor bits 0-7 and 20-31, major 8-19); 0 without one. */
  ttyNr: number;
  /** The foreground process group of the controlling terminal; -1 without one. */
  tpgid: number;
  /** PF_* task flags. */
  flags: number;
  /** Clock ticks of CPU time in user and kernel mode: its own, and its waited-for children's. */
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
  nice: number;
  numThreads: number;
  /** Clock ticks after boot: with pid, it names one process for good. */
  startTime: number;
  startCode: number;
  endCode: number;
  startStack: number;
  startData: number;
  endData: number;
  startBrk: number;
  argStart: number;
  argEnd: number;
  envStart: number;
  envEnd: number;
  exitCode: number;
}

/** proc(5) numbers the fields from 1; exit_code (52) is the last one the kernel prints today. */
const LAST_FIELD = 52;
const INTEGER = /^-?\d{1,20}$/;

export function parseStat(text: string): ProcStat {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  // comm is printed raw (spaces, parentheses, even newlines), so it ends at the LAST ')'.
  const open = body.indexOf(' (');
  const close = body.lastIndexOf(')');
  if (open < 0 || close < open + 2) throw new ProcParseError('stat', 1, '"pid (comm) ..."', body);
  const pidText = body.slice(0, open);
  if (!/^\d{1,10}$/.test(pidText)) throw new ProcParseError('stat', 1, 'a pid as field 1', pidText);
  if (body[close + 1] !== ' ') throw new ProcParseError('stat', 1, 'a space after comm', body.slice(close));

  const comm = body.slice(open + 2, close);
  // fields[n] is proc(5) field n.
  const fields = ['', pidText, comm, ...body.slice(close + 2).split(' ')];
  if (fields.length <= LAST_FIELD) {
    throw new ProcParseError('stat', 1, `${LAST_FIELD} fields`, `${fields.length - 1} fields`);
  }
  if (!/^[A-Za-z]$/.test(fields[3])) throw new ProcParseError('stat', 1, 'a one-letter state as field 3', fields[3]);
  for (let n = 4; n < fields.length; n++) {
    if (!INTEGER.test(fields[n])) throw new ProcParseError('stat', 1, `an integer as field ${n}`, fields[n]);
  }
  const field = (n: number) => Number(fields[n]);

  return {
    pid: Number(pidText),
    comm,
    state: fields[3],
    ppid: field(4),
    pgrp: field(5),
    session: field(6),
    ttyNr: field(7),
    tpgid: field(8),
    flags: field(9),
    utime: field(14),
    stime: field(15),
    cutime: field(16),
    cstime: field(17),
    nice: field(19),
    numThreads: field(20),
    startTime: field(22),
    startCode: field(26),
    endCode: field(27),
    startStack: field(28),
    startData: field(45),
    endData: field(46),
    startBrk: field(47),
    argStart: field(48),
    argEnd: field(49),
    envStart: field(50),
    envEnd: field(51),
    exitCode: field(52),
  };
}

/** USER_HZ on x86: /proc's clock ticks per second, in which start times are counted. */
export const CLOCK_TICKS_PER_SECOND = 100;

/** The time since boot in clock ticks, as start times are given. */
export function uptimeTicks(): number {
  return Math.floor(Number(fs.readFileSync('/proc/uptime', 'latin1').split(' ')[0]) * CLOCK_TICKS_PER_SECOND);
}

/**
 * The process's stat, or with tid one thread's (/proc/<pid>/task/<tid>/stat: its own CPU time,
 * where the process's is the whole group's). Throws the fs error untouched: ENOENT means there is
 * no such pid.
 */
export function readStat(pid: number, tid?: number): ProcStat {
  return parseStat(fs.readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8'));
}

/**
 * The nanoseconds thread tid of pid has spent on a CPU (/proc/<pid>/task/<tid>/schedstat): it
 * grows whenever the thread runs, if only to stop again.
 */
export function threadRunTime(pid: number, tid: number): bigint {
  return BigInt(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
}

/** Whether pid is still the process started at startTime and has not exited (a killed tracee is a zombie). */
export function isRunning(pid: number, startTime: number): boolean {
  try {
    const stat = readStat(pid);
    return stat.startTime === startTime && !['Z', 'X'].includes(stat.state);
  } catch {
    return false;
  }
}

/** Whether a process other than pid and those `except` names, not yet ended, is in process group pgrp. */
export function groupHasOthers(pgrp: number, pid: number, except: (other: number) => boolean = () => false): boolean {
  for (const name of fs.readdirSync('/proc')) {
    const other = Number(name);
    if (!Number.isInteger(other) || other === pid) continue;
    try {
      const stat = readStat(other);
      if (stat.pgrp === pgrp && !['Z', 'X'].includes(stat.state) && !except(other)) return true;
    } catch {
      // Gone.
    }
  }
  return false;
}

/** Whether pid is a child of ancestor, or a child's child, and so on. */
export function descendsFrom(pid: number, ancestor: number): boolean {
  try {
    for (let parent = readStat(pid).ppid; parent > 1; parent = readStat(parent).ppid) {
      if (parent === ancestor) return true;
    }
  } catch {
    // Gone on the way up.
  }
  return false;
}

export function isKernelThread(stat: ProcStat): boolean {
  return (stat.flags & PF_KTHREAD) !== 0;
}

const exited = (state: string) => state === 'Z' || state === 'X';

/**
 * The id under which /proc and the memory calls reach process pid's memory and files: pid while
 * its leader thread lives; once the leader has exited (pthread_exit in main) it stays a zombie
 * until the whole group ends, and /proc/<pid>/maps, mem, fd and the rest are empty, so the first
 * thread still running stands in for it. null for a kernel thread or a process that has exited.
 * Throws the fs error when there is no such pid. leader: the leader's stat, where the caller has it.
 */
export function memoryHolder(pid: number, leader = readStat(pid)): number | null {
  if (isKernelThread(leader)) return null;
  if (!exited(leader.state)) return pid;
  let tids: number[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`).map(Number).filter((tid) => tid !== pid).sort((a, b) => a - b);
  } catch {
    return null;
  }
  for (const tid of tids) {
    try {
      if (!exited(readStat(pid, tid).state)) return tid;
    } catch {
      // gone meanwhile
    }
  }
  return null;
}

/**
 * How many threads of the process that id (pid or tid) belongs to have not exited: of its threads
 * only the leader stays listed once it has exited (a zombie until the whole group ends); the
 * others are reaped at once.
 */
export function liveThreadCount(id: number): number {
  const threads = fs.readdirSync(`/proc/${id}/task`).length;
  const tgid = statusNumber(fs.readFileSync(`/proc/${id}/status`, 'latin1'), 'Tgid');
  return threads - (exited(readStat(tgid).state) ? 1 : 0);
}
