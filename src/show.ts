// `imgfs show`: reads a binfmt_img v0 image and its extension front to back in bounded memory,
// checks every structural rule of the format, and prints it for people or (--json) for machines.

import { cpuList, describeConnection, describeLock, describeSocket, describeSocketKind, isTimerArmed, policyName, SIG_IGN, SOCK_RAW, vmaFlagEntries, type ExtensionFd, type IntervalTimer, type ExtensionThread, type ImageExtension, type PosixTimer, type TerminalState, type TimeSpec, type TimeValue } from './extension-model.js';
import { cpuClockTarget, RLIMIT_NAMES, rlimitText, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID, SOCKET_PAIR_TYPES, VMA_FLAGS } from './extension.js';
import {
  CKPT_TLS_ENTRIES, MAP_ANONYMOUS, MAP_SHARED, PAGE_SIZE_BIGINT, PROT_EXEC, PROT_READ, PROT_WRITE, SEGMENT_FIELDS, decodeSegment,
} from './format.js';
import type { DecodedHeader, DecodedMm, DecodedRegs, DecodedVma } from './format.js';
import { fileErrorMessage } from './errors.js';
import { ImageFormatError, ImageReader, standardInputProblem, type ImageExtensionRead, type ImageSource } from './imagestream.js';
import { PAGE_SIZE } from './model.js';
import { PageIndex } from './pageindex.js';
import { socketOptionText } from './socketoptions.js';

export { ImageFormatError, type ImageSource };

export interface ImageSummary {
  header: DecodedHeader;
  regs: DecodedRegs;
  mm: DecodedMm;
  vmas: (DecodedVma & { pages: number })[];
  pageCount: number;
  /** Bytes in the whole source, extension included. */
  size: number;
  /** The extension after the trailer, when the image has one. */
  extension?: ShownExtension;
}

export type ShownExtension = ImageExtensionRead;

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

/** Parses and checks a whole image; throws ImageFormatError at the first structural problem. */
export async function readImage(source: ImageSource): Promise<ImageSummary> {
  const reader = new ImageReader(source);
  try {
    const { header, regs, mm, vmas } = await reader.readHead();
    const pages = vmas.map(() => 0);
    for (let batch = await reader.nextPages(); batch; batch = await reader.nextPages()) {
      for (const index of batch.vmaIndexes) pages[index]++;
    }
    const extension = await reader.readExtension();
    return {
      header,
      regs,
      mm,
      vmas: vmas.map((vma, i) => ({ ...vma, pages: pages[i] })),
      pageCount: pages.reduce((a, b) => a + b, 0),
      size: reader.offset,
      ...(extension ? { extension } : {}),
    };
  } finally {
    // Stops and closes a file stream the reader opened when parsing ends early.
    await reader.close();
  }
}

const word = (v: bigint): string => `0x${v.toString(16).padStart(16, '0')}`;

function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

function formatRegs(regs: DecodedRegs): string[] {
  const rows = [
    ['ip', 'sp', 'bp', 'flags'],
    ['ax', 'bx', 'cx', 'dx'],
    ['si', 'di', 'orig_ax', 'r8'],
    ['r9', 'r10', 'r11', 'r12'],
    ['r13', 'r14', 'r15'],
  ] as const;
  const lines = rows.map((row) => '  ' + row.map((name) => `${name.padStart(7)} ${word(regs[name])}`).join('  '));
  lines.push('  ' + SEGMENT_FIELDS.map((name) => `${name} ${decodeSegment(regs[name])}`).join('  '));
  lines.push(`  fs base ${word(regs.fs)}  gs base ${word(regs.gs)}`);
  for (let i = 0; i < CKPT_TLS_ENTRIES; i++) lines.push(`  tls[${i}] ${word(regs.tls[i])}`);
  return lines;
}

function formatMm(mm: DecodedMm): string[] {
  return [
    `  flags ${hex(mm.flags)}  def_flags ${hex(mm.defFlags)}  exe_fd ${mm.exeFd}`,
    `  code  ${hex(mm.startCode)}-${hex(mm.endCode)}`,
    `  data  ${hex(mm.startData)}-${hex(mm.endData)}`,
    `  brk   ${hex(mm.startBrk)}-${hex(mm.brk)}`,
    `  stack ${hex(mm.startStack)}`,
    `  args  ${hex(mm.argStart)}-${hex(mm.argEnd)}`,
    `  env   ${hex(mm.envStart)}-${hex(mm.envEnd)}`,
  ];
}

function formatVma(vma: DecodedVma & { pages: number }): string {
  const perms = (vma.prot & PROT_READ ? 'r' : '-') + (vma.prot & PROT_WRITE ? 'w' : '-') +
    (vma.prot & PROT_EXEC ? 'x' : '-') + (vma.flags & MAP_SHARED ? 's' : 'p');
  const backing = vma.flags & MAP_ANONYMOUS ? 'anon' : 'file';
  const range = `${vma.start.toString(16).padStart(12, '0')}-${vma.end.toString(16).padStart(12, '0')}`;
  return `  ${range} ${perms} ${backing} ${vma.pgoff.toString(16).padStart(8, '0')} ${String(vma.pages).padStart(9)}`;
}

/** The image the way a person reads it. */
export function formatImage(summary: ImageSummary): string {
  const { header, regs, mm, vmas, pageCount, size, extension } = summary;
  const mappedPages = vmas.reduce((sum, v) => sum + Number((v.end - v.start) / PAGE_SIZE_BIGINT), 0);
  return [
    `binfmt_img image: magic ${hex(header.magic)}, version ${hex(header.version)} (v0), ${size} bytes`,
    '',
    'registers',
    ...formatRegs(regs),
    '',
    'mm',
    ...formatMm(mm),
    '',
    `vmas (${vmas.length})`,
    `  ${'start-end'.padEnd(25)} perm kind ${'pgoff'.padEnd(8)} ${'pages'.padStart(9)}`,
    ...vmas.map(formatVma),
    '',
    `total: ${vmas.length} vmas mapping ${mappedPages} pages, ${pageCount} pages dumped (${formatBytes(pageCount * PAGE_SIZE)})`,
    ...(extension ? formatExtension(extension) : ['extension: none']),
    '',
  ].join('\n');
}

const SIGNAL_NAMES = [
  'HUP', 'INT', 'QUIT', 'ILL', 'TRAP', 'ABRT', 'BUS', 'FPE', 'KILL', 'USR1', 'SEGV', 'USR2', 'PIPE', 'ALRM',
  'TERM', 'STKFLT', 'CHLD', 'CONT', 'STOP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'XCPU', 'XFSZ', 'VTALRM', 'PROF',
  'WINCH', 'IO', 'PWR', 'SYS',
];
const signalName = (signal: number): string => `SIG${SIGNAL_NAMES[signal - 1] ?? signal}`;
const SS_FLAGS: readonly [bigint, string][] = [[0x1n, 'SS_ONSTACK'], [0x2n, 'SS_DISABLE'], [0x8000_0000n, 'SS_AUTODISARM']];
const SA_FLAGS: readonly [bigint, string][] = [
  [0x1n, 'SA_NOCLDSTOP'], [0x2n, 'SA_NOCLDWAIT'], [0x4n, 'SA_SIGINFO'], [0x0400_0000n, 'SA_RESTORER'],
  [0x0800_0000n, 'SA_ONSTACK'], [0x1000_0000n, 'SA_RESTART'], [0x4000_0000n, 'SA_NODEFER'], [0x8000_0000n, 'SA_RESETHAND'],
];

/** Flag bits by name, joined with |; bits without a name in hex. */
function flagNames(flags: bigint, known: readonly [bigint, string][]): string {
  const names = known.filter(([bit]) => flags & bit).map(([, name]) => name);
  const rest = known.reduce((left, [bit]) => left & ~bit, flags);
  if (rest !== 0n) names.push(hex(rest));
  return names.length > 0 ? names.join('|') : '0';
}

/** glibc's dev_t encoding, as maps prints it: major:minor in hex. */
function deviceName(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}`;
}

const NS_PER_MS = 1_000_000n;
const MAX_DATE_MS = 8_640_000_000_000_000n;

function mtimeText(ns: bigint): string {
  const ms = ns / NS_PER_MS;
  if (ms > MAX_DATE_MS || ms < -MAX_DATE_MS) return `${ns}ns`;
  return new Date(Number(ms)).toISOString().replace('.000Z', 'Z');
}

/** The exit futexes of a thread, when the image records them (older ones do not). */
function threadFutexText(t: ExtensionThread): string {
  if (t.clearChildTid === undefined && t.robustList === undefined) return '';
  const robust = t.robustList ?? { head: 0, len: 0 };
  return `  clear_child_tid ${hex(t.clearChildTid ?? 0)}  robust_list ${hex(robust.head)} (${robust.len} bytes)`;
}

/** What else the image records about a thread, one indented line each. */
function threadStateLines(t: ExtensionThread): string[] {
  const lines: string[] = [];
  if (t.rseq) {
    const { address, length, signature } = t.rseq;
    lines.push(address === 0 ? '    rseq none' : `    rseq ${hex(address)} (${length} bytes, signature ${hex(signature)})`);
  }
  if (t.sigaltstack) {
    const { sp, size, flags } = t.sigaltstack;
    lines.push(`    sigaltstack ${hex(sp)} (${size} bytes, flags ${flagNames(BigInt(flags), SS_FLAGS)})`);
  }
  for (const info of t.pendingSignals ?? []) lines.push(`    pending ${siginfoText(info)}`);
  if (t.identity) {
    const { name, uids, gids, groups, caps, securebits, noNewPrivs } = t.identity;
    lines.push(`    name ${JSON.stringify(name.toString('latin1'))}  uid ${uids.join('/')}  gid ${gids.join('/')}  groups ${groups.length > 0 ? groups.join(',') : 'none'}`);
    lines.push(`    capabilities effective ${hex(caps.effective)} permitted ${hex(caps.permitted)} inheritable ${hex(caps.inheritable)} ` +
      `bounding ${hex(caps.bounding)} ambient ${hex(caps.ambient)}  securebits ${hex(securebits)}${noNewPrivs ? '  no_new_privs' : ''}`);
  }
  if (t.scheduling) {
    const { policy, nice, priority, cpus, ioprio, timerSlackNs, runtime, deadline, period } = t.scheduling;
    const deadlineText = policy === 6 ? ` runtime ${runtime} deadline ${deadline} period ${period} ns` : '';
    lines.push(`    scheduling ${policyName(policy)} nice ${nice} priority ${priority}${deadlineText}  cpus ${cpuList(cpus)}  ` +
      `ioprio ${ioprio === 0 ? 'none' : `class ${ioprio >> 13} level ${ioprio & 0x1fff}`}  timer slack ${timerSlackNs} ns`);
  }
  if (t.seccomp) lines.push(t.seccomp.mode === 'strict' ? '    seccomp strict' : `    seccomp filters ${t.seccomp.filters.map((i) => `#${i}`).join(' ')} (oldest first)`);
  return lines;
}

/** si_code values of signals a process sent (kill, sigqueue, a timer, a message queue, tgkill). */
const SI_CODES = new Map([[0, 'SI_USER'], [-1, 'SI_QUEUE'], [-2, 'SI_TIMER'], [-3, 'SI_MESGQ'], [-6, 'SI_TKILL']]);

/** A siginfo_t: the signal, how it was sent, and for a process's signal who sent it (and its value). */
function siginfoText(info: Buffer): string {
  const code = info.readInt32LE(8);
  const head = `${signalName(info.readInt32LE(0))} ${SI_CODES.get(code) ?? `code ${code}`}`;
  if (!SI_CODES.has(code) || code === -2) return head;
  const sender = `${head} pid ${info.readInt32LE(16)} uid ${info.readUInt32LE(20)}`;
  return code === -1 || code === -3 ? `${sender} value ${hex(info.readBigUInt64LE(24))}` : sender;
}

function formatExtension({ offset, length, version, content: ext }: ShownExtension): string[] {
  const range = (start: number, end: number) => `${start.toString(16).padStart(12, '0')}-${end.toString(16).padStart(12, '0')}`;
  const handled = ext.sigactions.map((a, i) => ({ ...a, signal: i + 1 })).filter((a) => a.handler !== 0n);
  return [
    `extension: version ${version}, ${length} bytes at byte ${offset}`,
    `  exe  ${ext.exe}`,
    `  cwd  ${ext.cwd}`,
    `  brk  ${hex(ext.brk)}`,
    `  auxv ${ext.auxv.length / 16} entries`,
    '',
    `threads (${ext.threads.length})`,
    ...ext.threads.flatMap((t) => [
      `  tid ${t.tid}  ip ${word(t.regs.rip)}  sp ${word(t.regs.rsp)}  fs_base ${word(t.regs.fs_base)}  ` +
        `sigmask ${hex(t.sigmask)}  xstate ${t.xstate.length} bytes${threadFutexText(t)}`,
      ...threadStateLines(t),
    ]),
    '',
    `mapped files (${ext.files.length})`,
    ...ext.files.map((f) => `  ${range(f.start, f.end)} dev ${deviceName(f.dev)} inode ${f.inode} size ${f.size} ` +
      `mtime ${mtimeText(f.mtimeNs)} ${f.path}`),
    '',
    `signal dispositions other than SIG_DFL (${handled.length})`,
    ...handled.map((a) => `  ${signalName(a.signal).padEnd(10)} ${a.handler === SIG_IGN ? 'SIG_IGN' : `handler ${hex(a.handler)}`}` +
      `  flags ${flagNames(a.flags, SA_FLAGS)}  mask ${hex(a.mask)}  restorer ${hex(a.restorer)}`),
    '',
    `open file descriptors (${ext.fds.length})`,
    ...ext.fds.flatMap((f) => [
      `  ${String(f.fd).padStart(4)} ${f.kind.padEnd(6)} flags 0${f.flags.toString(8).padStart(6, '0')} pos ${f.offset} ${f.target}`,
      ...fdStateLines(f),
    ]),
    ...(ext.sharedPendingSignals ? [
      '',
      `pending signals of the process (${ext.sharedPendingSignals.length})`,
      ...ext.sharedPendingSignals.map((info) => `  ${siginfoText(info)}`),
    ] : []),
    ...processStateLines(ext),
    ...(ext.sharedMemory ? [
      '',
      `shared memory contents (${ext.sharedMemory.length})`,
      ...ext.sharedMemory.map((m) => `  ${range(m.start, m.end)} ${m.pages.totalPages} pages`),
    ] : []),
    ...vmaFlagsLines(ext),
    ...(ext.stopped ? ['', 'stopped (SIGSTOP) when dumped: restored stopped'] : []),
    ...(ext.children ? ['', `children at the dump (not restored): ${ext.children.join(' ')}`] : []),
    ...(ext.mappedContents ? [
      '',
      `deleted files mapped, carried (${ext.mappedContents.length})`,
      ...ext.mappedContents.map((c) => `  file ${c.dev}:${c.inode} ${c.bytes.length} bytes (mode 0${c.mode.toString(8)})`),
    ] : []),
    ...(ext.guardPages ? ['', `guard pages (${ext.guardPages.length} ${ext.guardPages.length === 1 ? 'run' : 'runs'})`, ...ext.guardPages.map(([start, end]) => `  ${range(start, end)}`)] : []),
    ...(ext.clocks ? ['', `clocks at the dump: monotonic ${nanoseconds(ext.clocks.monotonic)}  boottime ${nanoseconds(ext.clocks.boottime)}`] : []),
    ...(ext.settings ? ['', `oom_score_adj ${ext.settings.oomScoreAdj}  personality ${hex(ext.settings.personality)}`] : []),
    ...(ext.seccompFilters ? [
      '',
      `seccomp filters (${ext.seccompFilters.length})`,
      ...ext.seccompFilters.map((f, i) => `  #${i}  ${f.program.length / 8} instructions${f.log ? '  log' : ''}`),
    ] : []),
  ];
}

/** The VMAs with madvise flags or mlock, by their start. */
function vmaFlagsLines(ext: ImageExtension): string[] {
  if (!ext.vmaFlags) return [];
  const flagged = vmaFlagEntries(ext.vmaFlags).filter((v) => v.flags !== 0);
  return ['', `VMA flags (${flagged.length} of the VMAs have any)`,
    ...flagged.map(({ start, flags }) => `  ${start.toString(16).padStart(12, '0')} ${VMA_FLAGS.filter((f) => flags & f.bit).map((f) => f.name).join(' ')}`)];
}

const ITIMER_NAMES = ['ITIMER_REAL', 'ITIMER_VIRTUAL', 'ITIMER_PROF'];
const seconds = ({ sec, usec }: TimeValue): string => `${sec}.${String(usec).padStart(6, '0')} s`;

/** The umask, resource limits, interval timers and POSIX timers, each when the image records them. */
function processStateLines(ext: ImageExtension): string[] {
  const lines: string[] = [];
  if (ext.umask !== undefined) lines.push('', `umask 0${ext.umask.toString(8).padStart(3, '0')}`);
  if (ext.rlimits) {
    lines.push('', `resource limits (${ext.rlimits.length}): soft hard`,
      ...ext.rlimits.map(({ soft, hard }, i) =>
        `  ${(RLIMIT_NAMES[i] ?? `resource ${i}`).padEnd(17)} ${rlimitText(soft)} ${rlimitText(hard)}`));
  }
  if (ext.itimers) {
    lines.push('', 'interval timers', ...ext.itimers.map((timer, i) => `  ${ITIMER_NAMES[i].padEnd(14)} ${intervalTimerText(timer, i)}`));
  }
  if (ext.posixTimers) lines.push('', `POSIX timers (${ext.posixTimers.length})`, ...ext.posixTimers.map(posixTimerText));
  return lines;
}

const CLOCK_NAMES = [
  'REALTIME', 'MONOTONIC', 'PROCESS_CPUTIME_ID', 'THREAD_CPUTIME_ID', 'MONOTONIC_RAW', 'REALTIME_COARSE', 'MONOTONIC_COARSE',
  'BOOTTIME', 'REALTIME_ALARM', 'BOOTTIME_ALARM', undefined, 'TAI',
].map((name) => name && `CLOCK_${name}`);
const nanoseconds = ({ sec, nsec }: TimeSpec): string => `${sec}.${String(nsec).padStart(9, '0')} s`;

/** A CPU-time clock by whom it counts; any other by its name. */
function clockText(clock: number): string {
  const target = cpuClockTarget(clock);
  if (target === null) return CLOCK_NAMES[clock] ?? `clock ${clock}`;
  const thread = (clock & 4) !== 0;
  const whose = target === 0 ? `the creating ${thread ? 'thread' : 'process'}` : `${thread ? 'thread' : 'process'} ${target}`;
  return `CPU time of ${whose} (clock ${clock})`;
}

/** An ITIMERS entry (the which-th timer) as show prints it. */
function intervalTimerText(timer: IntervalTimer, which: number): string {
  if (!isTimerArmed(timer, which)) return 'disarmed';
  const expired = timer.value.sec === 0 && timer.value.usec === 0 ? ' (expired: armed again when its SIGALRM is taken)' : '';
  return `value ${seconds(timer.value)}  interval ${seconds(timer.interval)}${expired}`;
}

/** What an eventfd, epoll instance, timerfd, signalfd, userfaultfd, self-pipe, socket, terminal or file held, indented under its fd line. */
function fdStateLines(fd: ExtensionFd): string[] {
  const lines: string[] = [];
  if (fd.eventfd) lines.push(`eventfd count ${fd.eventfd.count}${fd.eventfd.semaphore ? ' semaphore' : ''}`);
  for (const e of fd.epoll ?? []) lines.push(`epoll fd ${e.fd} events ${hex(e.events)} data ${hex(e.data)}`);
  if (fd.timerfd) {
    const { clock, ticks, settimeFlags, interval, value } = fd.timerfd;
    lines.push(`timerfd clock ${clock} ` + (value.sec === 0 && value.nsec === 0 ? 'disarmed' : `value ${nanoseconds(value)}  interval ${nanoseconds(interval)}`) +
      `  ticks ${ticks}  settime flags ${settimeFlags}`);
  }
  if (fd.signalfd) lines.push(`signalfd mask ${hex(fd.signalfd.mask)}`);
  if (fd.userfaultfd) lines.push(fd.userfaultfd.features === null ? 'userfaultfd, no UFFDIO_API yet' : `userfaultfd features ${hex(fd.userfaultfd.features)}`);
  if (fd.pipeData) lines.push(`pipe holds ${fd.pipeData.bytes.length} bytes (capacity ${fd.pipeData.capacity})`);
  if (fd.sharesWith !== undefined) lines.push(`the open file of fd ${fd.sharesWith} (a dup of it)`);
  for (const lock of fd.locks ?? []) lines.push(describeLock(lock));
  if (fd.unixPeer) lines.push(`socket pair (${SOCKET_PAIR_TYPES.get(fd.unixPeer.type)}) with socket:[${fd.unixPeer.peer}]`);
  if (fd.boundSocket) {
    const socket = fd.boundSocket;
    const options = [...(socket.listening ? [`backlog ${socket.backlog}`] : []), ...(socket.v6only ? ['IPv6 only'] : []), ...(socket.reuseport ? ['SO_REUSEPORT'] : []),
      ...(socket.file ? [`file mode 0${socket.file.mode.toString(8)} owner ${socket.file.uid}:${socket.file.gid}`] : [])];
    lines.push(`${socket.listening ? 'listens' : 'bound'}: ${describeSocket(socket)}${options.length > 0 ? ` (${options.join(', ')})` : ''}`);
  }
  if (fd.netlink) {
    const { type, protocol, groups } = fd.netlink;
    lines.push(`netlink protocol ${protocol} (${type === SOCK_RAW ? 'raw' : 'datagram'}), groups ${groups.length > 0 ? groups.join(',') : 'none'}`);
  }
  if (fd.unboundSocket) {
    const socket = fd.unboundSocket;
    const options = [...(socket.reuseaddr ? ['SO_REUSEADDR'] : []), ...(socket.reuseport ? ['SO_REUSEPORT'] : []), ...(socket.v6only ? ['IPv6 only'] : [])];
    lines.push(`unbound: ${describeSocketKind(socket)}${options.length > 0 ? ` (${options.join(', ')})` : ''}`);
  }
  if (fd.terminal) lines.push(`terminal: ${terminalText(fd.terminal)}`);
  if (fd.fileState) {
    const { dev, inode, size, mtimeNs } = fd.fileState;
    lines.push(`file: dev ${deviceName(dev)} inode ${inode} size ${size} mtime ${mtimeText(mtimeNs)}`);
  }
  if (fd.connectedSocket) lines.push(`connected (${TCP_STATE_NAMES[fd.connectedSocket.state - 1]}): ${describeConnection(fd.connectedSocket)}`);
  if (fd.content) {
    const { memfd, seals, mode, bytes } = fd.content;
    lines.push(`holds ${bytes.length} bytes (${memfd ? `memfd, seals ${hex(seals)}` : `mode 0${mode.toString(8)}`})`);
  }
  for (const w of fd.inotify ?? []) lines.push(`inotify watch ${w.wd} mask ${hex(w.mask)} ${w.path ?? `inode ${w.inode} (path unknown)`}`);
  if (fd.socketOptions) lines.push(`options ${fd.socketOptions.map(socketOptionText).join(' ')}`);
  return lines.map((line) => `         ${line}`);
}

/** struct termios's c_lflag (a u32 at byte 12) and the bits of it shown: ISIG, ICANON, ECHO. */
const TERMIOS_LFLAG_AT = 12;
const ISIG = 0o1;
const ICANON = 0o2;
const ECHO = 0o10;

/** "controlling, foreground; 24x80; raw (no ICANON, no ECHO)": what it was to the process, rows x columns, its line discipline's mode. */
function terminalText(terminal: TerminalState): string {
  const lflag = terminal.termios.readUInt32LE(TERMIOS_LFLAG_AT);
  const modes = [...(lflag & ECHO ? ['echo'] : ['no ECHO']), ...(lflag & ISIG ? [] : ['no ISIG'])].join(', ');
  return [
    ...(terminal.controlling ? [terminal.foreground ? 'controlling, foreground' : 'controlling'] : []),
    `${terminal.rows}x${terminal.columns}`,
    lflag & ICANON ? `canonical, ${modes}` : `raw (no ICANON, ${modes})`,
  ].join('; ');
}

/** sk_state names from 1, TCP_ESTABLISHED (include/net/tcp_states.h); UDP and Unix sockets are ESTABLISHED when connected. */
const TCP_STATE_NAMES = ['ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING'];

function posixTimerText(timer: PosixTimer): string {
  const notify = timer.notify === SIGEV_NONE ? 'no signal' :
    `signal ${timer.signal} value 0x${timer.sigevValue.toString(16)}` +
    (timer.notify === SIGEV_THREAD_ID ? ` to thread ${timer.tid}` : timer.notify === SIGEV_THREAD ? ' (SIGEV_THREAD)' : '');
  const times = timer.value.sec === 0 && timer.value.nsec === 0 ? 'disarmed' :
    `value ${nanoseconds(timer.value)}  interval ${nanoseconds(timer.interval)}`;
  return `  timer ${timer.id}  ${clockText(timer.clock)}  ${notify}  ${times}`;
}

/**
 * JSON for machines: bigints become "0x..." strings, byte buffers (auxv, FPU state, termios) hex strings,
 * the pages of shared memory their count.
 */
export function imageToJson(summary: ImageSummary): string {
  return JSON.stringify(summary, function (this: Record<string, unknown>, key, value) {
    const raw = this[key];
    if (Buffer.isBuffer(raw)) return raw.toString('hex');
    if (raw instanceof PageIndex) return raw.totalPages;
    return typeof value === 'bigint' ? hex(value) : value;
  }, 2) + '\n';
}

export interface ShowIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: ShowIo = {
  out: (text) => { process.stdout.write(text); },
  err: (text) => { process.stderr.write(text); },
};

const USAGE = 'usage: imgfs show <image|-> [--json]\n';

/** `imgfs show <image> [--json]`; argv holds the arguments after "show". Returns the exit status. */
export async function showMain(argv: string[], io: ShowIo = processIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(USAGE);
    return 0;
  }
  // After `--`, every word is an image (one may begin with '-').
  const ended = argv.indexOf('--');
  const options = ended < 0 ? argv : argv.slice(0, ended);
  const json = options.includes('--json');
  const unknown = options.find((arg) => arg.startsWith('-') && arg !== '-' && arg !== '--json');
  const files = [...options.filter((arg) => arg !== '--json' && (arg === '-' || !arg.startsWith('-'))), ...(ended < 0 ? [] : argv.slice(ended + 1))];
  const problem = unknown !== undefined ? `unknown option '${unknown}'`
    : files.length === 0 ? 'no image given (a file, or - for standard input)'
      : files.length > 1 ? `one image at a time, not ${files.length}` : undefined;
  if (problem !== undefined) {
    io.err(`imgfs show: ${problem} (imgfs show --help)\n`);
    return 2;
  }
  const file = files[0];
  const stdinProblem = file === '-' ? standardInputProblem('imgfs show') : undefined;
  if (stdinProblem !== undefined) {
    io.err(`imgfs show: -: ${stdinProblem}\n`);
    return 1;
  }
  let summary: ImageSummary;
  try {
    summary = await readImage(file === '-' ? process.stdin : file);
  } catch (err) {
    const message = err instanceof ImageFormatError ? err.message : fileErrorMessage(err);
    if (message === undefined) throw err;
    io.err(`imgfs show: ${file}: ${message}\n`);
    return 1;
  }
  io.out(json ? imageToJson(summary) : formatImage(summary));
  return 0;
}
