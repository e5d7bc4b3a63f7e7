// A synthetic image extension with every field away from its default: for round trips and as the
// seed of the extension fuzz test; and the checks every per-thread record type gets.

import type { ExecutionContext } from 'ava';
import { decodeExtension, encodeExtension, ExtensionFormatError } from '../../src/extension.js';
import { VMA_TERMINATOR, encodeHeader, encodeMm, encodeRegs, encodeVma } from '../../src/format.js';
import { TERMIOS_SIZE, type ExtensionFd, type ExtensionThread, type ImageExtension } from '../../src/extension-model.js';
import { USER_REGS_ORDER, type UserDesc, type UserRegs } from '../../src/model.js';
import { PageIndexBuilder, type PageIndex } from '../../src/pageindex.js';

function regs(seed: number): UserRegs {
  return Object.fromEntries(USER_REGS_ORDER.map((name, i) => [name, BigInt(seed) * 0x1_0000_0001n + BigInt(i) * 0x0101n + 0xffff_0000_0000_0000n])) as unknown as UserRegs;
}

function tls(entry: number, used: boolean): UserDesc {
  return used
    ? { entryNumber: entry, baseAddr: 0x12345678, limit: 0xfffff, seg32bit: true, contents: 2, readExecOnly: false, limitInPages: true, segNotPresent: false, useable: true }
    : { entryNumber: entry, baseAddr: 0, limit: 0, seg32bit: false, contents: 0, readExecOnly: true, limitInPages: false, segNotPresent: true, useable: false };
}

function filled(length: number, seed: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff));
}

export function sampleExtension(): ImageExtension {
  const auxv = Buffer.alloc(3 * 16);
  auxv.writeBigUInt64LE(6n, 0); // AT_PAGESZ
  auxv.writeBigUInt64LE(4096n, 8);
  auxv.writeBigUInt64LE(25n, 16); // AT_RANDOM
  auxv.writeBigUInt64LE(0x7ffd_1234_5678n, 24);
  return {
    exe: '/usr/bin/täst (deleted)',
    cwd: '/tmp/a dir',
    brk: 0x5555_5567_8123,
    auxv,
    threads: [1234, 1240].map((tid, i) => ({
      tid,
      regs: regs(tid),
      tls: [tls(12, i === 0), tls(13, false), tls(14, false)],
      sigmask: i === 0 ? 0x4002n : 0xffff_ffff_ffff_ffffn,
      fpregs: filled(512, tid),
      xstate: filled(2696 + i * 8, tid + 1),
    })),
    files: [
      { start: 0x40_0000, end: 0x40_2000, path: '/usr/bin/täst (deleted)', dev: 0x803n, inode: 123456n, size: 8192, mtimeNs: 1_700_000_000_123_456_789n },
      { start: 0x7f00_0000_0000, end: 0x7f00_0000_1000, path: '/tmp/data\\012file', dev: 0xfd_0000_0001n, inode: 2n ** 40n, size: 5, mtimeNs: -1n },
    ],
    sigactions: Array.from({ length: 64 }, (_, i) => ({
      handler: i === 9 ? 0x40_1136n : i === 12 ? 1n : 0n,
      flags: i === 9 ? 0x1400_0000n : 0n,
      restorer: i === 9 ? 0x7f12_3456_7890n : 0n,
      mask: i === 9 ? 1n << 11n : 0n,
    })),
    fds: [
      { fd: 0, kind: 'tty', flags: 0o102002, offset: 0, target: '/dev/pts/3' },
      { fd: 3, kind: 'file', flags: 0o100000, offset: 12345, target: '/tmp/a dir/data' },
      { fd: 4, kind: 'pipe', flags: 0, offset: 0, target: 'pipe:[98765]' },
      { fd: 7, kind: 'socket', flags: 0o2, offset: 0, target: 'socket:[4242]' },
      { fd: 1023, kind: 'other', flags: 0o2000002, offset: 0, target: 'anon_inode:[eventfd]' },
    ],
  };
}

/** A page index of these [start, end) ranges. */
export function pageIndex(ranges: [number, number][]): PageIndex {
  const builder = new PageIndexBuilder();
  for (const [start, end] of ranges) builder.add(start, end);
  return builder.build();
}

/** Shared memory of the sample: 4 pages with pages 0, 2 and 3 carried; 2 pages with none. */
export const SAMPLE_SHARED_MEMORY = [
  { start: 0x7f00_0010_0000, end: 0x7f00_0010_4000, pages: pageIndex([[0x7f00_0010_0000, 0x7f00_0010_1000], [0x7f00_0010_2000, 0x7f00_0010_4000]]) },
  { start: 0x7f00_0020_0000, end: 0x7f00_0020_2000, pages: pageIndex([]) },
];

/** VMA flags of the sample: none, one, several, every one. */
export const SAMPLE_VMA_FLAGS = [
  { start: 0x5555_5555_4000, flags: 0 },
  { start: 0x7f00_0010_0000, flags: 1 << 2 },
  { start: 0x7f00_0020_0000, flags: (1 << 0) | (1 << 3) | (1 << 4) },
  { start: 0x7ffd_0000_0000, flags: 0x1ff },
];

/** POSIX timers of the sample: one of each notification, on wall-clock and CPU-time clocks. */
export const SAMPLE_POSIX_TIMERS = [
  { id: 1, clock: 1, notify: 0, tid: 0, signal: 34, sigevValue: 1234n, interval: { sec: 0, nsec: 200_000_000 }, value: { sec: 0, nsec: 123_456_789 } },
  { id: 2, clock: 7, notify: 1, tid: 0, signal: 0, sigevValue: 0n, interval: { sec: 0, nsec: 0 }, value: { sec: 999, nsec: 5 } },
  { id: 7, clock: -2, notify: 4, tid: 1240, signal: 35, sigevValue: 0x7f00_1234_5678n, interval: { sec: 0, nsec: 0 }, value: { sec: 0, nsec: 0 } },
  { id: 0x7fff_ffff, clock: -6, notify: 2, tid: 0, signal: 64, sigevValue: 0xffff_ffff_ffff_ffffn, interval: { sec: 2 ** 40, nsec: 999_999_999 }, value: { sec: 1, nsec: 0 } },
];

/**
 * struct termios of an editor's raw mode (as vim sets it): no input translation, output as usual,
 * 8 bits, signals on but neither ICANON nor ECHO; Linux's c_line and default c_cc, VMIN 1, VTIME 0.
 */
export const SAMPLE_TERMIOS = (() => {
  const termios = Buffer.alloc(TERMIOS_SIZE);
  [0, 0o5, 0o277, 0o1].forEach((flags, i) => termios.writeUInt32LE(flags, 4 * i));
  Buffer.from([3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0, 0, 0]).copy(termios, 17);
  return termios;
})();

/**
 * Event-loop descriptors of the full sample (its fd 1023 is an eventfd): an epoll instance, a
 * timerfd, a signalfd, a userfaultfd; and sockets and a terminal.
 */
export const SAMPLE_EVENT_FDS: ExtensionFd[] = [
  {
    fd: 8, kind: 'other', flags: 0o2000002, offset: 0, target: 'anon_inode:[eventpoll]',
    epoll: [{ fd: 4, events: 0x19, data: 0x1234_5678_9abc_def0n }, { fd: 1023, events: 0x8000_0001, data: 0n }],
  },
  {
    fd: 9, kind: 'other', flags: 0o2004002, offset: 0, target: 'anon_inode:[timerfd]',
    timerfd: { clock: 1, ticks: 3n, settimeFlags: 1, interval: { sec: 0, nsec: 200_000_000 }, value: { sec: 5, nsec: 999_999_999 } },
  },
  { fd: 10, kind: 'other', flags: 0o2, offset: 0, target: 'anon_inode:[signalfd]', signalfd: { mask: (1n << 9n) | (1n << 63n) } },
  // A self-pipe holding libuv's signal-lock byte and some more, in a pipe made larger than the default.
  { fd: 11, kind: 'pipe', flags: 0o2000000, offset: 0, target: 'pipe:[55555]', pipeData: { capacity: 131072, bytes: Buffer.from('x\0\xffend', 'latin1') } },
  { fd: 12, kind: 'pipe', flags: 0o2004001, offset: 0, target: 'pipe:[55555]' },
  // asyncio's self-pipe: a stream socket pair.
  { fd: 13, kind: 'socket', flags: 0o2004002, offset: 0, target: 'socket:[77001]', unixPeer: { type: 1, peer: 77002 } },
  { fd: 14, kind: 'socket', flags: 0o2004002, offset: 0, target: 'socket:[77002]', unixPeer: { type: 1, peer: 77001 } },
  // A lazy loader's userfaultfd, its features asked (UFFD_FEATURE_THREAD_ID 0x100, _EVENT_REMOVE 0x8).
  { fd: 20, kind: 'other', flags: 0o2004000, offset: 0, target: 'anon_inode:[userfaultfd]', userfaultfd: { features: 0x108n } },
  // A server's sockets: a TCP listener on 127.0.0.1:8080, and a Unix datagram socket bound to an abstract name.
  {
    fd: 30, kind: 'socket', flags: 0o2004002, offset: 0, target: 'socket:[88001]',
    boundSocket: { family: 2, type: 1, protocol: 6, listening: true, backlog: 511, v6only: false, reuseport: true, address: Buffer.from('02001f907f0000010000000000000000', 'hex') },
  },
  {
    fd: 31, kind: 'socket', flags: 0o2, offset: 0, target: 'socket:[88002]',
    boundSocket: { family: 1, type: 2, protocol: 0, listening: false, backlog: 0, v6only: false, reuseport: false, address: Buffer.from('\x01\x00\x00name', 'latin1') },
  },
  // A client's connections: TCP from 127.0.0.1:40000 to 127.0.0.1:5432, and an unnamed Unix stream socket to /run/db.sock.
  {
    fd: 32, kind: 'socket', flags: 0o2004002, offset: 0, target: 'socket:[88003]',
    connectedSocket: { family: 2, type: 1, protocol: 6, state: 1, local: Buffer.from('02009c407f0000010000000000000000', 'hex'), peer: Buffer.from('020015387f0000010000000000000000', 'hex') },
  },
  {
    fd: 33, kind: 'socket', flags: 0o2, offset: 0, target: 'socket:[88004]',
    connectedSocket: { family: 1, type: 1, protocol: 0, state: 8, local: Buffer.alloc(0), peer: Buffer.from('\x01\x00/run/db.sock\0', 'latin1') },
  },
  // A watcher of the kernel's link events: NETLINK_ROUTE, RTNLGRP_LINK and RTNLGRP_NEXTHOP.
  { fd: 34, kind: 'socket', flags: 0o2000002, offset: 0, target: 'socket:[88005]', netlink: { type: 3, protocol: 0, groups: [1, 32] } },
  // A UDP socket a client sends from with sendto, IPv6 only, allowed to broadcast: bound to nothing yet.
  {
    fd: 35, kind: 'socket', flags: 0o2004002, offset: 0, target: 'socket:[88006]',
    unboundSocket: { family: 10, type: 2, protocol: 17, reuseaddr: true, reuseport: false, v6only: true },
    socketOptions: [{ level: 1, name: 6, value: Buffer.from([1, 0, 0, 0]) }],
  },
  // An editor's terminal: its controlling terminal, in raw mode, 50 rows of 132 columns, its group in the foreground.
  {
    fd: 36, kind: 'tty', flags: 0o2, offset: 0, target: '/dev/pts/3',
    terminal: { termios: SAMPLE_TERMIOS, rows: 50, columns: 132, xpixels: 1188, ypixels: 900, controlling: true, foreground: true },
  },
];

/** struct sock_filter instructions: code, jt, jf, k. */
const bpf = (...instructions: [number, number, number, number][]): Buffer => Buffer.concat(instructions.map(([code, jt, jf, k]) => {
  const insn = Buffer.alloc(8);
  insn.writeUInt16LE(code, 0);
  insn.writeUInt8(jt, 2);
  insn.writeUInt8(jf, 3);
  insn.writeUInt32LE(k, 4);
  return insn;
}));

/** A filter failing uname (63) with EOPNOTSUPP, and one failing getpriority (140) with ENOMSG that logs. */
export const SAMPLE_SECCOMP_FILTERS = [
  { program: bpf([0x20, 0, 0, 0], [0x15, 0, 1, 63], [0x06, 0, 0, 0x5005f], [0x06, 0, 0, 0x7fff0000]), log: false },
  { program: bpf([0x20, 0, 0, 0], [0x15, 0, 1, 140], [0x06, 0, 0, 0x5002a], [0x06, 0, 0, 0x7fff0000], [0x06, 0, 0, 0]), log: true },
];

/** The listener's keepalive, and its congestion control as getsockopt names it (16 bytes, NUL-padded). */
export const SAMPLE_SOCKET_OPTIONS = [
  { level: 1, name: 9, value: Buffer.from([1, 0, 0, 0]) },
  { level: 6, name: 13, value: Buffer.from('bbr\0\0\0\0\0\0\0\0\0\0\0\0\0', 'latin1') },
];

/** The sample with every optional record too: each thread's and the process's. */
export function fullSampleExtension(): ImageExtension {
  const ext = sampleExtension();
  const info = (signal: number, value: number) => {
    const buf = filled(128, signal);
    buf.writeInt32LE(signal, 0);
    buf.writeInt32LE(-1, 8); // SI_QUEUE
    buf.writeBigUInt64LE(BigInt(value), 24);
    return buf;
  };
  ext.threads = ext.threads.map((thread, i) => ({
    ...thread,
    clearChildTid: 0x7f00_1234_5990 + i * 0x1000,
    robustList: { head: 0x7f00_1234_59a0 + i * 0x1000, len: 24 },
    rseq: { address: 0x7f00_1234_5a00 + i * 0x1000, length: 32, signature: 0x53053053 },
    sigaltstack: i === 0 ? { sp: 0x5555_0000_0000, flags: 0, size: 65536 } : { sp: 0, flags: 2, size: 0 },
    pendingSignals: i === 0 ? [] : [info(12, 7), info(34, 8)],
    // A daemon that dropped root and kept one capability; its second thread named, with no groups.
    identity: {
      name: Buffer.from(i === 0 ? 'redis-server' : 'bio_\xe9', 'latin1'),
      uids: [2001, 2002, 2003, 2002], gids: [1001, 1002, 1003, 1002], groups: i === 0 ? [100, 200] : [],
      caps: { inheritable: 0x400n, permitted: 0x400n, effective: 0x400n, bounding: 0x1_fffe_dfff_ffn, ambient: 0x400n },
      securebits: 0x10, noNewPrivs: i === 0,
    },
    // The leader under two filters; the other thread in strict mode.
    seccomp: i === 0 ? { mode: 'filter', filters: [1, 0] } : { mode: 'strict' },
    // A batch job on CPUs 1 and 3 at nice 19; a real-time thread on every CPU of a larger machine.
    scheduling: i === 0 ?
      { policy: 3, flags: 0n, nice: 19, priority: 0, runtime: 0n, deadline: 0n, period: 0n, utilMin: 0, utilMax: 1024, cpus: Buffer.from([0b1010, 0, 0, 0, 0, 0, 0, 0]), ioprio: (2 << 13) | 7, timerSlackNs: 50000n } :
      { policy: 1, flags: 1n, nice: 0, priority: 50, runtime: 0n, deadline: 0n, period: 0n, utilMin: 100, utilMax: 900, cpus: Buffer.alloc(16, 0xff), ioprio: 0, timerSlackNs: 0n },
  }));
  ext.settings = { oomScoreAdj: -17, personality: 0x0040000 };
  ext.seccompFilters = SAMPLE_SECCOMP_FILTERS;
  ext.sharedPendingSignals = [info(10, 42)];
  ext.umask = 0o027;
  ext.rlimits = Array.from({ length: 16 }, (_, resource) => (resource === 7 ? { soft: 100n, hard: 200n } :
    resource === 4 ? { soft: 0n, hard: 0n } : { soft: 0x1000n + BigInt(resource), hard: 0xffff_ffff_ffff_ffffn }));
  ext.itimers = [
    { interval: { sec: 0, usec: 200_000 }, value: { sec: 0, usec: 123_456 } },
    { interval: { sec: 0, usec: 0 }, value: { sec: 0, usec: 0 } },
    { interval: { sec: 1, usec: 5 }, value: { sec: 86_400, usec: 999_999 } },
  ];
  ext.sharedMemory = SAMPLE_SHARED_MEMORY;
  ext.posixTimers = SAMPLE_POSIX_TIMERS;
  ext.vmaFlags = SAMPLE_VMA_FLAGS;
  ext.stopped = true;
  ext.children = [4243, 70000];
  ext.guardPages = [[0x7f0000008000, 0x7f000000c000], [0x7ffd00000000, 0x7ffd00001000]];
  ext.mappedContents = [{ dev: 0xfe00n, inode: 2164601n, mode: 0o755, bytes: Buffer.from('\x7fELF, deleted since') }];
  const locks: ExtensionFd['locks'] = [
    { kind: 'flock', write: true, start: 0, end: null },
    { kind: 'posix', write: false, start: 100, end: 109 },
    { kind: 'ofd', write: true, start: 5, end: null },
  ];
  const content = { memfd: false, seals: 0, mode: 0o600, bytes: Buffer.from('the bytes of a deleted file\n') };
  const fileState = { dev: 0x10302n, inode: 1234567n, size: 8192, mtimeNs: 1_764_000_000_123_456_789n };
  ext.fds = ext.fds.map((fd) => (fd.fd === 3 ? { ...fd, locks, content, fileState } : fd));
  ext.fds = [...ext.fds.slice(0, -1), ...SAMPLE_EVENT_FDS, { ...ext.fds[ext.fds.length - 1], eventfd: { count: 0xffff_ffff_ffff_fffen, semaphore: true } }];
  ext.fds = ext.fds.map((fd) => (fd.fd === 30 ? { ...fd, socketOptions: SAMPLE_SOCKET_OPTIONS } : fd.fd === 13 ? { ...fd, queued: [Buffer.from('\0wake')] } : fd));
  // fd 3 dup'd (2>&1, dup2): one open file, one offset.
  ext.fds.splice(ext.fds.findIndex((fd) => fd.fd === 4) + 1, 0, { fd: 6, kind: 'file', flags: 0o2100000, offset: 12345, target: '/tmp/a dir/data', sharesWith: 3 });
  // A file watcher: a directory by path, and a watch whose path could not be found.
  ext.fds.push({ fd: 2000, kind: 'other', flags: 0o2004000, offset: 0, target: 'anon_inode:inotify', inotify: [
    { wd: 1, mask: 0x100, inode: 5n, path: '/srv/app' }, { wd: 7, mask: 0x80000002, inode: 9n, path: null },
  ] });
  return ext;
}

/** Image offsets of the records of an encoded extension, with their type. */
export function recordOffsets(buf: Buffer): { type: number; at: number }[] {
  const out: { type: number; at: number }[] = [];
  for (let pos = 16; pos < buf.length; pos += 8 + Math.ceil(buf.readUInt32LE(pos + 4) / 8) * 8) {
    out.push({ type: buf.readUInt32LE(pos), at: pos });
  }
  return out;
}

/**
 * The checks every per-thread record type gets: sample threads given `values` round-trip, the
 * sample without them (an older image) decodes without them, and a record naming an unknown
 * thread or a thread that already has one is an ExtensionFormatError at that record.
 */
export function checkPerThreadRecord(t: ExecutionContext, type: number, name: string, values: Partial<ExtensionThread>[]): void {
  const ext = sampleExtension();
  ext.threads = ext.threads.map((thread, i) => ({ ...thread, ...values[i] }));
  const buf = encodeExtension(ext);
  t.deepEqual(decodeExtension(buf), ext);
  const older = decodeExtension(encodeExtension(sampleExtension()));
  t.deepEqual(older, sampleExtension());
  for (const key of Object.keys(values[0])) t.false(key in older.threads[0], `${key} is absent from an older image`);

  const [first, second] = recordOffsets(buf).filter((r) => r.type === type);
  t.truthy(second, `one ${name} record per thread`);
  const orphan = Buffer.from(buf);
  orphan.writeUInt32LE(4321, second.at + 8);
  const error = t.throws(() => decodeExtension(orphan), { instanceOf: ExtensionFormatError });
  t.is(error?.offset, second.at);
  t.is(error?.message, `byte ${second.at}: ${name} record: thread 4321 has no THREAD record`);
  const twice = Buffer.from(buf);
  twice.writeUInt32LE(buf.readUInt32LE(first.at + 8), second.at + 8);
  t.regex(t.throws(() => decodeExtension(twice))!.message, new RegExp(`${name} record: a second one for thread ${ext.threads[0].tid}`));
}

/**
 * The checks every optional per-process record type gets: the sample given `values` round-trips
 * with one record of the type, the sample without them (an older image) decodes without them,
 * and a second record of the type is an ExtensionFormatError at it. Returns the encoded sample
 * and the image offset of its record, for checks of the payload.
 */
export function checkProcessRecord(t: ExecutionContext, type: number, name: string, values: Partial<ImageExtension>): { buf: Buffer; at: number } {
  const ext = { ...sampleExtension(), ...values };
  const buf = encodeExtension(ext);
  t.deepEqual(decodeExtension(buf), ext);
  const older = decodeExtension(encodeExtension(sampleExtension()));
  for (const key of Object.keys(values)) t.false(key in older, `${key} is absent from an older image`);

  const found = recordOffsets(buf).filter((r) => r.type === type);
  t.is(found.length, 1, `one ${name} record`);
  const { at } = found[0];
  const end = buf.length - 8;
  const twice = Buffer.concat([buf.subarray(0, end), buf.subarray(at, end), buf.subarray(end)]);
  twice.writeBigUInt64LE(BigInt(twice.length), 8);
  const error = t.throws(() => decodeExtension(twice), { instanceOf: ExtensionFormatError });
  t.is(error?.message, `byte ${end}: a second ${name} record`);
  return { buf, at };
}

/** A v0 image without pages whose VMAs are the sample's shared memory, which its SHARED_PAGES records need. */
export function sampleV0Prefix(): Buffer {
  const regs = Object.fromEntries(['r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx',
    'rsi', 'rdi', 'orig_rax', 'rip', 'eflags', 'rsp', 'fs_base', 'gs_base'].map((n) => [n, 0n])) as Record<string, bigint>;
  const full = { ...regs, cs: 0x33n, ss: 0x2bn, ds: 0n, es: 0n, fs: 0n, gs: 0n } as UserRegs;
  return Buffer.concat([
    encodeHeader(), encodeRegs(full, []),
    encodeMm({ flags: 0n, defFlags: 0n, startCode: 0, endCode: 0, startData: 0, endData: 0, startBrk: 0, brk: 0,
      startStack: 0, argStart: 0, argEnd: 0, envStart: 0, envEnd: 0 }),
    ...SAMPLE_SHARED_MEMORY.map(({ start, end }) => encodeVma({
      start, end, read: true, write: true, exec: false, mayShare: true, offset: 0, dev: '00:01', inode: 7, name: '/memfd:x (deleted)', vmFlags: new Set(),
    })),
    VMA_TERMINATOR, Buffer.alloc(8),
  ]);
}
