// The image extension: its encoder and decoder on synthetic data (byte layout, round trip, every
// check of the decoder), then on real targets dumped through a mount.

import test, { type ExecutionContext } from 'ava';
import { promises as fsp, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import {
  EXTENSION_HEADER_SIZE, EXTENSION_MAGIC, ExtensionFormatError, FILE_STATE_SIZE, GUARD_PAGES_ENTRY_SIZE, MAPPED_CONTENT_FIXED_SIZE, RecordType, TERMINAL_CONTROLLING, TERMINAL_FOREGROUND, TERMINAL_SIZE,
  decodeExtension, decodeExtensionHeader, encodeExtension, extensionSize, shapeOf,
} from '../src/extension.js';
import { FormatError } from '../src/format.js';
import { describeConnection, describeSocketKind, type ExtensionFd, type TerminalState } from '../src/extension-model.js';
import { buildTarget } from './helpers/build.js';
import { fullSampleExtension, recordOffsets, SAMPLE_TERMIOS, sampleExtension, sampleV0Prefix } from './helpers/extension-sample.js';
import { makeTempDir, readAt } from './helpers/files.js';
import { readMaps, readMem, threadStatuses } from './helpers/groundtruth.js';
import { MAP_ANONYMOUS, parseImage } from './helpers/image.js';
import { formatImage, imageToJson, readImage, showMain } from '../src/show.js';
import { mountImgfs } from './helpers/mount.js';
import { startTarget, type Target } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';

const BASE = 1_000_000;

/** Offsets of the records of an encoded extension: [type, record offset, payload length]. */
function records(buf: Buffer): [number, number, number][] {
  const out: [number, number, number][] = [];
  let pos = EXTENSION_HEADER_SIZE;
  while (pos < buf.length) {
    const type = buf.readUInt32LE(pos);
    const length = buf.readUInt32LE(pos + 4);
    out.push([type, pos, length]);
    pos += 8 + Math.ceil(length / 8) * 8;
  }
  return out;
}

function recordOf(buf: Buffer, type: number, nth = 0): { at: number; length: number } {
  const found = records(buf).filter(([t]) => t === type)[nth];
  if (!found) throw new Error(`no record of type ${type} #${nth}`);
  return { at: found[1], length: found[2] };
}

function rejects(t: ExecutionContext, buf: Buffer, offset: number, message: RegExp): void {
  const err = t.throws(() => decodeExtension(buf, BASE), { instanceOf: ExtensionFormatError });
  t.is(err?.offset, BASE + offset, err?.message);
  t.regex(err?.message ?? '', message);
  t.true(err?.message.startsWith(`byte ${BASE + offset}: `));
}

test('round trip: decode(encode(x)) is x, and the size is known from the shape', (t) => {
  const ext = sampleExtension();
  const buf = encodeExtension(ext);
  t.is(buf.length, extensionSize(shapeOf(ext)));
  t.is(buf.length % 8, 0);
  t.deepEqual(decodeExtension(buf, BASE), ext);
});

test('round trip with every optional record (exit futexes, rseq, signal stacks, pending signals, umask, rlimits, itimers, shared pages, POSIX timers, event-loop fds, VMA flags, stopped, pipe data, socket pairs, file locks, children, bound sockets, thread identities, seccomp, socket options, scheduling, inotify, file contents, socket data, shared descriptors, connected sockets, netlink sockets, unbound sockets, terminals, userfaultfds)', (t) => {
  const ext = fullSampleExtension();
  const buf = encodeExtension(ext);
  t.is(buf.length, extensionSize(shapeOf(ext)));
  t.deepEqual(decodeExtension(buf, BASE), ext);
  t.deepEqual(records(buf).map(([type]) => type).filter((type) => type > RecordType.FD), [
    RecordType.THREAD_FUTEX, RecordType.THREAD_FUTEX, RecordType.THREAD_RSEQ, RecordType.THREAD_RSEQ,
    RecordType.THREAD_SIGALTSTACK, RecordType.THREAD_SIGALTSTACK,
    RecordType.PENDING_SIGNALS, RecordType.PENDING_SIGNALS, RecordType.PENDING_SIGNALS,
    RecordType.UMASK, RecordType.RLIMITS, RecordType.ITIMERS, RecordType.SHARED_PAGES, RecordType.SHARED_PAGES,
    RecordType.POSIX_TIMERS, RecordType.EVENTFD, RecordType.EPOLL, RecordType.TIMERFD, RecordType.SIGNALFD, RecordType.VMA_FLAGS,
    RecordType.STOPPED, RecordType.PIPE_DATA, RecordType.UNIX_PEER, RecordType.UNIX_PEER, RecordType.FILE_LOCKS, RecordType.CHILDREN,
    RecordType.BOUND_SOCKET, RecordType.BOUND_SOCKET, RecordType.THREAD_IDENTITY, RecordType.THREAD_IDENTITY,
    RecordType.SECCOMP_FILTER, RecordType.SECCOMP_FILTER, RecordType.THREAD_SECCOMP, RecordType.THREAD_SECCOMP, RecordType.SOCKET_OPTIONS, RecordType.SOCKET_OPTIONS,
    RecordType.THREAD_SCHEDULING, RecordType.THREAD_SCHEDULING, RecordType.PROCESS_SETTINGS, RecordType.INOTIFY,
    RecordType.FILE_CONTENT, RecordType.SOCKET_DATA, RecordType.SHARED_FD, RecordType.CONNECTED_SOCKET, RecordType.CONNECTED_SOCKET,
    RecordType.NETLINK_SOCKET, RecordType.UNBOUND_SOCKET, RecordType.TERMINAL, RecordType.FILE_STATE, RecordType.GUARD_PAGES,
    RecordType.MAPPED_CONTENT, RecordType.USERFAULTFD,
  ], 'in the order of docs/format.md');
});

test('SHARED_FD: byte layout, and bad records', (t) => {
  const buf = encodeExtension(fullSampleExtension());
  const at = recordOffsets(buf).find((r) => r.type === RecordType.SHARED_FD)!.at;
  const payload = at + 8;
  t.deepEqual([buf.readUInt32LE(at + 4), buf.readUInt32LE(payload), buf.readUInt32LE(payload + 4)], [8, 6, 3], 'length, fd, the fd it shares');
  t.is(decodeExtension(buf).fds.find((fd) => fd.fd === 6)?.sharesWith, 3);
  const broken = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(value, pos);
    return t.throws(() => decodeExtension(copy))?.message;
  };
  t.is(broken(payload + 4, 7), `byte ${payload + 4}: SHARED_FD record: fd 6: fd 7, whose open file it shares, is no lower descriptor of the process`);
  t.is(broken(payload + 4, 2), `byte ${payload + 4}: SHARED_FD record: fd 6: fd 2, whose open file it shares, is no lower descriptor of the process`);
  t.is(broken(payload + 4, 4), `byte ${payload + 4}: SHARED_FD record: fd 6 and fd 4, whose open file it shares, name different files`);
  t.is(broken(payload + 4, 0xffff_ffff), `byte ${payload + 4}: SHARED_FD record: fd 4294967295 is not a file descriptor number`);
  t.is(broken(payload, 5), `byte ${at}: SHARED_FD record: fd 5 has no FD record`);
  t.regex(t.throws(() => encodeExtension({ ...fullSampleExtension(), fds: fullSampleExtension().fds.map((fd) => (fd.fd === 6 ? { ...fd, sharesWith: 9 } : fd)) }))?.message ?? '',
    /fd 6: shares the open file of fd 9, which is not a lower descriptor/);
});

test('CONNECTED_SOCKET: byte layout, and bad records', (t) => {
  const buf = encodeExtension(fullSampleExtension());
  const [tcp, unix] = recordOffsets(buf).filter((r) => r.type === RecordType.CONNECTED_SOCKET).map((r) => r.at);
  const payload = tcp + 8;
  t.deepEqual([buf.readUInt32LE(tcp + 4), buf.readUInt32LE(payload), ...[4, 6, 8, 10, 12, 14].map((at) => buf.readUInt16LE(payload + at))],
    [48, 32, 2, 1, 6, 1, 16, 16], 'length, fd, family, type, protocol, state, the two address lengths');
  t.is(buf.subarray(payload + 16, payload + 48).toString('hex'), '02009c407f0000010000000000000000020015387f0000010000000000000000', 'local, then peer');
  t.deepEqual([buf.readUInt32LE(unix + 4), buf.readUInt16LE(unix + 8 + 12), buf.readUInt16LE(unix + 8 + 14)], [16 + 15, 0, 15], 'an unnamed Unix socket: no local address');
  const fds = decodeExtension(buf).fds;
  t.is(describeConnection(fds.find((fd) => fd.fd === 32)!.connectedSocket!), 'TCP 127.0.0.1:40000 to 127.0.0.1:5432');
  t.is(describeConnection(fds.find((fd) => fd.fd === 33)!.connectedSocket!), 'Unix stream (unnamed) to /run/db.sock');
  const broken = (pos: number, value: number, at = pos) => {
    const copy = Buffer.from(buf);
    copy.writeUInt16LE(value, pos);
    const message = t.throws(() => decodeExtension(copy))?.message ?? '';
    t.true(message.startsWith(`byte ${at}: CONNECTED_SOCKET record: `), message);
    return message.slice(message.indexOf('record: ') + 8);
  };
  t.is(broken(payload + 4, 3), 'address family 3 is not AF_UNIX, AF_INET or AF_INET6');
  t.is(broken(payload + 6, 2), 'socket type 2 for protocol 6');
  t.is(broken(payload + 8, 1), 'protocol 1 is neither TCP nor UDP');
  t.is(broken(payload + 10, 10), 'state 10 is no connection\'s (1..11, but 10, TCP_LISTEN)');
  t.is(broken(payload + 10, 0), 'state 0 is no connection\'s (1..11, but 10, TCP_LISTEN)');
  t.is(broken(payload + 16, 10, payload + 16), 'the local address is no 16-byte sockaddr of family 2');
  t.is(broken(payload + 32, 1, payload + 32), 'the peer address is no 16-byte sockaddr of family 2');
  t.is(broken(payload + 14, 17, tcp + 4), 'length 48, expected 49');
  t.is(broken(unix + 8 + 6, 3), 'Unix socket type 3 is not stream, datagram or seqpacket');
  t.is(broken(unix + 8 + 16, 2, unix + 8 + 16), 'the peer address is neither empty nor a Unix address of 3..110 bytes');
  const copy = Buffer.from(buf);
  copy.writeUInt32LE(30, payload);
  t.is(t.throws(() => decodeExtension(copy))?.message, `byte ${payload}: CONNECTED_SOCKET record: fd 30 has both a BOUND_SOCKET and a CONNECTED_SOCKET record`);
  copy.writeUInt32LE(13, payload);
  t.is(t.throws(() => decodeExtension(copy))?.message, `byte ${payload}: CONNECTED_SOCKET record: fd 13 has both a UNIX_PEER and a CONNECTED_SOCKET record`);
  copy.writeUInt32LE(3, payload);
  t.regex(t.throws(() => decodeExtension(copy))?.message ?? '', /fd 3 is "\/tmp\/a dir\/data", not a socket/);
  const bad = fullSampleExtension();
  bad.fds = bad.fds.map((fd) => (fd.fd === 32 ? { ...fd, connectedSocket: { ...fd.connectedSocket!, peer: Buffer.alloc(3) } } : fd));
  t.regex(t.throws(() => encodeExtension(bad))?.message ?? '', /fd 32: the peer address is no 16-byte sockaddr of family 2/);
});

test('NETLINK_SOCKET: byte layout, and bad records', (t) => {
  const buf = encodeExtension(fullSampleExtension());
  const at = recordOffsets(buf).find((r) => r.type === RecordType.NETLINK_SOCKET)!.at;
  const payload = at + 8;
  t.deepEqual([buf.readUInt32LE(at + 4), ...[0, 4, 8, 12, 16, 20].map((pos) => buf.readUInt32LE(payload + pos))],
    [24, 34, 3, 0, 2, 1, 32], 'length, fd, type, protocol, group count, the groups');
  t.deepEqual(decodeExtension(buf).fds.find((fd) => fd.fd === 34)?.netlink, { type: 3, protocol: 0, groups: [1, 32] });
  const broken = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(value, pos);
    return t.throws(() => decodeExtension(copy))?.message;
  };
  t.is(broken(payload + 4, 1), `byte ${payload + 4}: NETLINK_SOCKET record: netlink socket type 1 is neither SOCK_RAW nor SOCK_DGRAM`);
  t.is(broken(payload + 8, 32), `byte ${payload + 8}: NETLINK_SOCKET record: netlink protocol 32 is not below 32`);
  t.is(broken(payload + 20, 1), `byte ${payload + 20}: NETLINK_SOCKET record: group 1 is not above 1`);
  t.is(broken(payload + 16, 0), `byte ${payload + 16}: NETLINK_SOCKET record: group 0 is not above 0`);
  t.regex(broken(payload + 12, 3) ?? '', /NETLINK_SOCKET record: .*groups/);
  const connected = recordOffsets(buf).find((r) => r.type === RecordType.CONNECTED_SOCKET)!.at + 8;
  t.is(broken(payload, 32), `byte ${connected}: CONNECTED_SOCKET record: fd 32 has both a NETLINK_SOCKET and a CONNECTED_SOCKET record`, 'one socket record per socket');
  t.is(broken(payload, 3), `byte ${payload}: NETLINK_SOCKET record: fd 3 is "/tmp/a dir/data", not a socket`);
});

test('UNBOUND_SOCKET: byte layout, and bad records', (t) => {
  const buf = encodeExtension(fullSampleExtension());
  const at = recordOffsets(buf).find((r) => r.type === RecordType.UNBOUND_SOCKET)!.at;
  const payload = at + 8;
  t.deepEqual([buf.readUInt32LE(at + 4), buf.readUInt32LE(payload), ...[4, 6, 8, 10].map((pos) => buf.readUInt16LE(payload + pos))],
    [12, 35, 10, 2, 17, 1 | 4], 'length, fd, family, type, protocol, flags (SO_REUSEADDR, IPV6_V6ONLY)');
  const fd = decodeExtension(buf).fds.find((f) => f.fd === 35)!;
  t.deepEqual(fd.unboundSocket, { family: 10, type: 2, protocol: 17, reuseaddr: true, reuseport: false, v6only: true });
  t.is(describeSocketKind(fd.unboundSocket!), 'UDP over IPv6');
  t.is(describeSocketKind({ family: 2, type: 3, protocol: 1 }), 'raw protocol 1 over IPv4');
  t.is(describeSocketKind({ family: 1, type: 5, protocol: 0 }), 'Unix seqpacket');
  const broken = (pos: number, value: number, at = pos) => {
    const copy = Buffer.from(buf);
    copy.writeUInt16LE(value, pos);
    const message = t.throws(() => decodeExtension(copy))?.message ?? '';
    t.true(message.startsWith(`byte ${at}: `), message);
    return message.slice(message.indexOf(': ') + 2);
  };
  t.is(broken(payload + 4, 16), 'UNBOUND_SOCKET record: address family 16 is not AF_UNIX, AF_INET or AF_INET6');
  t.is(broken(payload + 6, 4), 'UNBOUND_SOCKET record: socket type 4 is not stream, datagram, raw or seqpacket');
  t.is(broken(payload + 10, 8), 'UNBOUND_SOCKET record: unknown flags 0x8');
  t.is(broken(payload + 4, 2, payload + 10), 'UNBOUND_SOCKET record: IPV6_V6ONLY on a socket that is not IPv6');
  const unix = Buffer.from(buf);
  unix.writeUInt16LE(1, payload + 4);
  unix.writeUInt16LE(0, payload + 10);
  unix.writeUInt16LE(3, payload + 6);
  t.is(t.throws(() => decodeExtension(unix))?.message, `byte ${payload + 6}: UNBOUND_SOCKET record: Unix socket type 3 is not stream, datagram or seqpacket`);
  unix.writeUInt16LE(2, payload + 6);
  t.is(t.throws(() => decodeExtension(unix))?.message, `byte ${payload + 8}: UNBOUND_SOCKET record: Unix socket protocol 17 is not 0`);
  unix.writeUInt16LE(0, payload + 8);
  t.is(decodeExtension(unix).fds.find((f) => f.fd === 35)?.unboundSocket?.family, 1, 'an unbound Unix datagram socket');
  // Moved to another fd, without its options (whose record would be the first to object).
  const sample = fullSampleExtension();
  const twice = encodeExtension({ ...sample, fds: sample.fds.map(({ socketOptions, ...f }) => (f.fd === 35 ? f : { ...f, socketOptions })) });
  const [connected, unbound] = [RecordType.CONNECTED_SOCKET, RecordType.UNBOUND_SOCKET].map((type) => recordOffsets(twice).find((r) => r.type === type)!.at + 8);
  twice.writeUInt32LE(32, unbound);
  t.is(t.throws(() => decodeExtension(twice))?.message, `byte ${connected}: CONNECTED_SOCKET record: fd 32 has both a UNBOUND_SOCKET and a CONNECTED_SOCKET record`, 'one socket record per socket');
  twice.writeUInt32LE(3, unbound);
  t.is(t.throws(() => decodeExtension(twice))?.message, `byte ${unbound}: UNBOUND_SOCKET record: fd 3 is "/tmp/a dir/data", not a socket`);
  const bad = fullSampleExtension();
  bad.fds = bad.fds.map((f) => (f.fd === 35 ? { ...f, unboundSocket: { ...f.unboundSocket!, family: 2 } } : f));
  t.regex(t.throws(() => encodeExtension(bad))?.message ?? '', /fd 35: IPV6_V6ONLY on a socket that is not IPv6/);
});

test('FILE_STATE: byte layout, and bad records', (t) => {
  const sample = fullSampleExtension();
  const buf = encodeExtension(sample);
  const at = recordOffsets(buf).find((r) => r.type === RecordType.FILE_STATE)!.at;
  const payload = at + 8;
  t.is(FILE_STATE_SIZE, 40);
  t.deepEqual([buf.readUInt32LE(at + 4), buf.readUInt32LE(payload), buf.readUInt32LE(payload + 4)], [40, 3, 0], 'length, fd, padding');
  t.deepEqual([buf.readBigUInt64LE(payload + 8), buf.readBigUInt64LE(payload + 16), buf.readBigUInt64LE(payload + 24), buf.readBigInt64LE(payload + 32)],
    [0x10302n, 1234567n, 8192n, 1_764_000_000_123_456_789n], 'dev, inode, size, mtime in ns');
  t.deepEqual(decodeExtension(buf).fds.find((f) => f.fd === 3)!.fileState, sample.fds.find((f) => f.fd === 3)!.fileState);

  const broken = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(value, pos);
    return t.throws(() => decodeExtension(copy), { instanceOf: ExtensionFormatError })?.message;
  };
  t.is(broken(payload + 4, 1), `byte ${payload + 4}: FILE_STATE record: padding 1 is not 0`);
  t.is(broken(payload, 7), `byte ${payload}: FILE_STATE record: fd 7 is "socket:[4242]", not a regular file`);
  t.is(broken(payload, 37), `byte ${at}: FILE_STATE record: fd 37 has no FD record`);
  t.is(broken(at + 4, 48), `byte ${at + 4}: FILE_STATE record: length 48, expected 40`);
  const onSocket = { ...sample, fds: sample.fds.map((f) => (f.fd === 7 ? { ...f, fileState: { dev: 1n, inode: 2n, size: 3, mtimeNs: 4n } } : f)) };
  t.regex(t.throws(() => encodeExtension(onSocket))?.message ?? '', /fd 7: file state of a descriptor that is no regular file/);
});

test('GUARD_PAGES: byte layout, and bad records', (t) => {
  const sample = fullSampleExtension();
  const buf = encodeExtension(sample);
  const at = recordOffsets(buf).find((r) => r.type === RecordType.GUARD_PAGES)!.at;
  const payload = at + 8;
  t.is(GUARD_PAGES_ENTRY_SIZE, 16);
  t.is(buf.readUInt32LE(at + 4), 32, 'length: two runs');
  t.deepEqual([0, 8, 16, 24].map((pos) => buf.readBigUInt64LE(payload + pos)), [0x7f0000008000n, 0x7f000000c000n, 0x7ffd00000000n, 0x7ffd00001000n],
    'start and end of each run');
  t.deepEqual(decodeExtension(buf).guardPages, sample.guardPages);

  const broken = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(value, pos);
    return t.throws(() => decodeExtension(copy), { instanceOf: ExtensionFormatError })?.message;
  };
  t.is(broken(payload, 0x8001), `byte ${payload}: GUARD_PAGES record: guard page run 0: 0x7f0000008001-0x7f000000c000 is not page-aligned`);
  t.is(broken(payload + 8, 0x8000), `byte ${payload}: GUARD_PAGES record: guard page run 0: 0x7f0000008000-0x7f0000008000 is empty`);
  t.is(broken(payload + 20, 0x7f00), `byte ${payload + 16}: GUARD_PAGES record: guard page run 1: 0x7f0000000000-0x7ffd00001000 is not above the run before it (ending at 0x7f000000c000)`);
  t.is(broken(at + 4, 24), `byte ${at + 4}: GUARD_PAGES record: length 24 is not a multiple of 16`);
  t.regex(t.throws(() => encodeExtension({ ...sample, guardPages: [[0x2000, 0x1000]] }))?.message ?? '', /guard page run 0: 0x2000-0x1000 is empty/);
});

test('MAPPED_CONTENT: byte layout, and bad records', (t) => {
  const sample = fullSampleExtension();
  const buf = encodeExtension(sample);
  const at = recordOffsets(buf).find((r) => r.type === RecordType.MAPPED_CONTENT)!.at;
  const payload = at + 8;
  const bytes = Buffer.from('\x7fELF, deleted since');
  t.is(MAPPED_CONTENT_FIXED_SIZE, 32);
  t.is(buf.readUInt32LE(at + 4), 32 + bytes.length, 'length');
  t.deepEqual([buf.readBigUInt64LE(payload), buf.readBigUInt64LE(payload + 8), buf.readUInt32LE(payload + 16), buf.readUInt32LE(payload + 20), buf.readBigUInt64LE(payload + 24)],
    [0xfe00n, 2164601n, 0o755, 0, BigInt(bytes.length)], 'dev, inode, mode, pad, size');
  t.true(buf.subarray(payload + 32, payload + 32 + bytes.length).equals(bytes), 'the bytes');
  t.deepEqual(decodeExtension(buf).mappedContents, sample.mappedContents);

  const broken = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(value, pos);
    return t.throws(() => decodeExtension(copy), { instanceOf: ExtensionFormatError })?.message;
  };
  t.is(broken(payload + 20, 1), `byte ${payload + 20}: MAPPED_CONTENT record: pad is not 0`);
  t.is(broken(payload + 24, bytes.length + 1), `byte ${at + 4}: MAPPED_CONTENT record: length ${32 + bytes.length}, expected ${33 + bytes.length}`);
  t.is(broken(payload + 24, 64 << 20), `byte ${payload + 24}: MAPPED_CONTENT record: size ${64 << 20} is more than ${32 << 20}`);
  const twice = encodeExtension({ ...sample, mappedContents: [...sample.mappedContents!, { ...sample.mappedContents![0], bytes: Buffer.from('again') }] });
  const second = recordOffsets(twice).filter((r) => r.type === RecordType.MAPPED_CONTENT)[1].at;
  t.is(t.throws(() => decodeExtension(twice), { instanceOf: ExtensionFormatError })?.message, `byte ${second + 8}: MAPPED_CONTENT record: a second record of file 65024:2164601`);
});

test('TERMINAL: byte layout, and bad records', async (t) => {
  const sample = fullSampleExtension();
  const buf = encodeExtension(sample);
  const at = recordOffsets(buf).find((r) => r.type === RecordType.TERMINAL)!.at;
  const payload = at + 8;
  t.is(TERMINAL_SIZE, 52);
  t.deepEqual([buf.readUInt32LE(at + 4), buf.readUInt32LE(payload), buf.readUInt32LE(payload + 4), ...[44, 46, 48, 50].map((pos) => buf.readUInt16LE(payload + pos))],
    [52, 36, TERMINAL_CONTROLLING | TERMINAL_FOREGROUND, 50, 132, 1188, 900], 'length, fd, flags (CONTROLLING, FOREGROUND), rows, columns, xpixels, ypixels');
  t.deepEqual([TERMINAL_CONTROLLING, TERMINAL_FOREGROUND], [1, 2]);
  t.deepEqual(buf.subarray(payload + 8, payload + 44), SAMPLE_TERMIOS, 'struct termios at 8');
  t.is(buf.readUInt32LE(payload + 8 + 12), 0o1, 'its c_lflag: ISIG, neither ICANON nor ECHO');
  const fd = decodeExtension(buf).fds.find((f) => f.fd === 36)!;
  t.deepEqual(fd.terminal, sample.fds.find((f) => f.fd === 36)!.terminal);
  t.deepEqual(fd.terminal, { termios: SAMPLE_TERMIOS, rows: 50, columns: 132, xpixels: 1188, ypixels: 900, controlling: true, foreground: true });

  const broken = (pos: number, value: number, image = buf) => {
    const copy = Buffer.from(image);
    copy.writeUInt32LE(value, pos);
    return t.throws(() => decodeExtension(copy), { instanceOf: ExtensionFormatError })?.message;
  };
  t.is(broken(payload + 4, 1 | 2 | 4), `byte ${payload + 4}: TERMINAL record: unknown flags 0x7`);
  t.is(broken(payload + 4, 0x8000_0001), `byte ${payload + 4}: TERMINAL record: unknown flags 0x80000001`);
  t.is(broken(payload + 4, TERMINAL_FOREGROUND), `byte ${payload + 4}: TERMINAL record: FOREGROUND without CONTROLLING`);
  t.is(broken(payload, 3), `byte ${payload}: TERMINAL record: fd 3 is "/tmp/a dir/data", not a terminal`);
  t.is(broken(payload, 7), `byte ${payload}: TERMINAL record: fd 7 is "socket:[4242]", not a terminal`);
  t.is(broken(payload, 37), `byte ${at}: TERMINAL record: fd 37 has no FD record`);
  t.is(broken(at + 4, 56), `byte ${at + 4}: TERMINAL record: length 56, expected 52`);
  t.is(broken(at + 4, 48), `byte ${at + 4}: TERMINAL record: length 48, expected 52`);
  for (const flags of [0, TERMINAL_CONTROLLING]) {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(flags, payload + 4);
    t.like(decodeExtension(copy).fds.find((f) => f.fd === 36)?.terminal, { controlling: flags !== 0, foreground: false }, 'not in the foreground, or no controlling terminal');
  }
  // fd 0 given one too, then renamed fd 36: two for one fd.
  const withStdin = encodeExtension({ ...sample, fds: sample.fds.map((f) => (f.fd === 0 ? { ...f, terminal: { ...fd.terminal!, controlling: false, foreground: false } } : f)) });
  const [first, second] = recordOffsets(withStdin).filter((r) => r.type === RecordType.TERMINAL);
  t.is(withStdin.readUInt32LE(first.at + 8), 0);
  t.is(broken(first.at + 8, 36, withStdin), `byte ${second.at}: TERMINAL record: a second one for fd 36`);

  const writing = (change: (f: ExtensionFd) => ExtensionFd) => {
    const bad = { ...sample, fds: sample.fds.map((f) => (f.terminal ? change(f) : f)) };
    return t.throws(() => encodeExtension(bad), { instanceOf: FormatError })?.message;
  };
  const state = (values: Partial<TerminalState>) => (f: ExtensionFd) => ({ ...f, terminal: { ...f.terminal!, ...values } });
  t.is(writing(state({ termios: Buffer.alloc(35) })), 'fd 36: a termios of 35 bytes, not 36');
  t.is(writing(state({ rows: 65536 })), 'fd 36: rows 65536 does not fit in a u16');
  t.is(writing(state({ ypixels: -1 })), 'fd 36: ypixels -1 does not fit in a u16');
  t.is(writing(state({ columns: 1.5 })), 'fd 36: columns 1.5 does not fit in a u16');
  t.is(writing(state({ controlling: false })), 'fd 36: FOREGROUND without CONTROLLING');
  t.is(writing((f) => ({ ...f, kind: 'other' })), 'fd 36: terminal state of a descriptor that is no tty');

  const summary = await readImage([Buffer.concat([sampleV0Prefix(), buf])]);
  t.regex(formatImage(summary), /\n {4}36 tty {4}flags 0000002 pos 0 \/dev\/pts\/3\n {9}terminal: controlling, foreground; 50x132; raw \(no ICANON, no ECHO\)\n/);
  const shown = JSON.parse(imageToJson(summary)).extension.content.fds.find((f: { fd: number }) => f.fd === 36);
  t.deepEqual(shown.terminal, { termios: SAMPLE_TERMIOS.toString('hex'), rows: 50, columns: 132, xpixels: 1188, ypixels: 900, controlling: true, foreground: true });
  const lines = (lflag: number, values: Partial<TerminalState> = {}) => {
    const termios = Buffer.from(SAMPLE_TERMIOS);
    termios.writeUInt32LE(lflag, 12);
    const ext = { ...sample, fds: sample.fds.map((f) => (f.terminal ? state({ termios, ...values })(f) : f)) };
    return formatImage({ ...summary, extension: { ...summary.extension!, content: ext } }).split('\n').filter((line) => line.includes('terminal: '));
  };
  t.deepEqual(lines(0o13), ['         terminal: controlling, foreground; 50x132; canonical, echo'], 'ISIG, ICANON, ECHO: a line editor');
  t.deepEqual(lines(0o3, { foreground: false }), ['         terminal: controlling; 50x132; canonical, no ECHO'], 'a password prompt, in the background');
  t.deepEqual(lines(0, { controlling: false, foreground: false, rows: 0, columns: 0 }), ['         terminal: 0x0; raw (no ICANON, no ECHO, no ISIG)'], 'cfmakeraw, on a terminal of no size');
});

test('layout: header, records in order, 8-byte aligned, END last', (t) => {
  const buf = encodeExtension(sampleExtension());
  t.is(buf.readUInt32LE(0), EXTENSION_MAGIC);
  t.is(buf.subarray(0, 4).toString('latin1'), 'IMGX');
  t.is(buf.readUInt32LE(4), 1);
  t.is(buf.readBigUInt64LE(8), BigInt(buf.length));
  t.deepEqual(decodeExtensionHeader(buf.subarray(0, 16)), { version: 1, length: buf.length });
  const types = records(buf).map(([type]) => type);
  t.deepEqual(types, [
    RecordType.EXE, RecordType.CWD, RecordType.BRK, RecordType.AUXV, RecordType.THREAD, RecordType.THREAD,
    RecordType.MAPPED_FILE, RecordType.MAPPED_FILE, RecordType.SIGACTIONS,
    RecordType.FD, RecordType.FD, RecordType.FD, RecordType.FD, RecordType.FD, RecordType.END,
  ]);
  for (const [, at] of records(buf)) t.is(at % 8, 0);
  const exe = recordOf(buf, RecordType.EXE);
  t.is(buf.subarray(exe.at + 8, exe.at + 8 + exe.length).toString('utf8'), '/usr/bin/täst (deleted)');
  const brk = recordOf(buf, RecordType.BRK);
  t.is(buf.readBigUInt64LE(brk.at + 8), 0x5555_5567_8123n);
  // THREAD: tid, tls count, sigmask, user_regs_struct (rip is word 16), fpregs size, xstate size, user_desc...
  const thread = recordOf(buf, RecordType.THREAD);
  t.is(buf.readUInt32LE(thread.at + 8), 1234);
  t.is(buf.readUInt32LE(thread.at + 12), 3);
  t.is(buf.readBigUInt64LE(thread.at + 16), 0x4002n);
  t.is(buf.readBigUInt64LE(thread.at + 24 + 16 * 8), sampleExtension().threads[0].regs.rip);
  t.is(buf.readUInt32LE(thread.at + 24 + 216), 512);
  t.is(buf.readUInt32LE(thread.at + 28 + 216), 2696);
  t.deepEqual([buf.readUInt32LE(thread.at + 248), buf.readUInt32LE(thread.at + 252), buf.readUInt32LE(thread.at + 260)],
    [12, 0x12345678, 0b1010101]);
  const sig = recordOf(buf, RecordType.SIGACTIONS);
  t.is(buf.readUInt32LE(sig.at + 8), 64);
  t.is(buf.readBigUInt64LE(sig.at + 16 + 9 * 32), 0x40_1136n, 'signal 10 is entry 9');
  const fd = recordOf(buf, RecordType.FD, 1);
  t.deepEqual([buf.readUInt32LE(fd.at + 8), buf.readUInt32LE(fd.at + 12), buf.readUInt32LE(fd.at + 16)], [3, 1, 0o100000]);
  t.is(buf.readBigUInt64LE(fd.at + 24), 12345n);
  t.deepEqual(records(buf).at(-1), [RecordType.END, buf.length - 8, 0]);
});

test('a record of an unknown type is skipped', (t) => {
  const buf = encodeExtension(sampleExtension());
  const end = buf.length - 8;
  const unknown = Buffer.alloc(8 + 16);
  unknown.writeUInt32LE(0x1234, 0);
  unknown.writeUInt32LE(13, 4);
  unknown.fill(0xee, 8, 8 + 13);
  const longer = Buffer.concat([buf.subarray(0, end), unknown, buf.subarray(end)]);
  longer.writeBigUInt64LE(BigInt(longer.length), 8);
  t.deepEqual(decodeExtension(longer), sampleExtension());
});

test('the encoder refuses what the layout cannot hold', (t) => {
  const ext = sampleExtension();
  t.throws(() => encodeExtension({ ...ext, sigactions: ext.sigactions.slice(1) }), { message: /63 signal dispositions/ });
  t.throws(() => encodeExtension({ ...ext, threads: [{ ...ext.threads[0], fpregs: Buffer.alloc(500) }] }), { message: /fpregs is 500 bytes/ });
  t.throws(() => encodeExtension({ ...ext, brk: -1 }), { message: /brk -1/ });
});

test('corrupt header: magic, version, length', (t) => {
  const good = encodeExtension(sampleExtension());
  const bad = (edit: (b: Buffer) => void): Buffer => { const b = Buffer.from(good); edit(b); return b; };
  rejects(t, bad((b) => b.writeUInt32LE(0x12345678, 0)), 0, /bad extension magic 0x12345678/);
  rejects(t, bad((b) => b.writeUInt32LE(2, 4)), 4, /unsupported extension version 2/);
  rejects(t, bad((b) => b.writeBigUInt64LE(13n, 8)), 8, /extension length 13/);
  rejects(t, bad((b) => b.writeBigUInt64LE(1n << 53n, 8)), 8, /extension length/);
  // Shared pages may make an extension that long: only its end tells.
  rejects(t, bad((b) => b.writeBigUInt64LE(1n << 40n, 8)), good.length, /image ends inside the extension/);
  rejects(t, good.subarray(0, 10), 0, /inside the extension header/);
  rejects(t, good.subarray(0, good.length - 8), good.length - 8, /image ends inside the extension/);
  rejects(t, Buffer.concat([good, Buffer.alloc(8)]), good.length, /8 bytes follow the extension's end/);
});

test('CHILDREN: the pids, each 1..2^22, in a record that holds exactly them', (t) => {
  const good = encodeExtension(fullSampleExtension());
  const children = recordOf(good, RecordType.CHILDREN);
  t.deepEqual([good.readUInt32LE(children.at + 8), good.readUInt32LE(children.at + 16), good.readUInt32LE(children.at + 20)], [2, 4243, 70000]);
  const bad = (pos: number, value: number): Buffer => { const b = Buffer.from(good); b.writeUInt32LE(value, pos); return b; };
  rejects(t, bad(children.at + 20, 0), children.at + 20, /CHILDREN record: child 1: 0 is not a pid/);
  rejects(t, bad(children.at + 8, 3), children.at + 8, /CHILDREN record: 3 pids do not fit the record/);
  rejects(t, bad(children.at + 12, 1), children.at + 12, /CHILDREN record: pad is not 0/);
});

test('corrupt records name the offending byte', (t) => {
  const good = encodeExtension(sampleExtension());
  const bad = (edit: (b: Buffer) => void): Buffer => { const b = Buffer.from(good); edit(b); return b; };
  const exe = recordOf(good, RecordType.EXE);
  const brk = recordOf(good, RecordType.BRK);
  const thread = recordOf(good, RecordType.THREAD);
  const file1 = recordOf(good, RecordType.MAPPED_FILE, 1);
  const sig = recordOf(good, RecordType.SIGACTIONS);
  const fd = recordOf(good, RecordType.FD, 1);
  const auxv = recordOf(good, RecordType.AUXV);

  rejects(t, bad((b) => b.writeUInt32LE(0xffff_fff0, exe.at + 4)), exe.at + 4, /EXE record: record length|runs past/);
  const cwd = recordOf(good, RecordType.CWD);
  rejects(t, bad((b) => { b[cwd.at + 8 + cwd.length + 3] = 1; }), cwd.at + 8 + cwd.length + 3, /padding is not zero/);
  rejects(t, bad((b) => { b[exe.at + 8 + 2] = 0; }), exe.at + 8 + 2, /EXE record: path contains a NUL/);
  rejects(t, bad((b) => { b[exe.at + 8 + 2] = 0xff; }), exe.at + 8, /not valid UTF-8/);
  rejects(t, bad((b) => b.writeBigUInt64LE(1n << 60n, brk.at + 8)), brk.at + 8, /brk 0x1000000000000000 is out of range/);
  rejects(t, bad((b) => b.writeUInt32LE(RecordType.EXE, brk.at)), brk.at, /a second EXE record/);
  rejects(t, bad((b) => b.writeBigUInt64LE(7n, auxv.at + 8 + auxv.length - 16)), auxv.at + 8 + auxv.length - 16, /AT_NULL/);
  rejects(t, bad((b) => b.writeUInt32LE(0, thread.at + 8)), thread.at + 8, /THREAD record: tid 0/);
  rejects(t, bad((b) => b.writeUInt32LE(4, thread.at + 12)), thread.at + 12, /4 TLS entries/);
  rejects(t, bad((b) => b.writeUInt32LE(0x7fffffff, thread.at + 8 + 240)), thread.at + 8 + 240,
    /THREAD record: TLS entry 0: GDT entry 2147483647, not one of the TLS entries 12\.\.14/);
  rejects(t, bad((b) => b.writeUInt32LE(511, thread.at + 8 + 232)), thread.at + 8 + 232, /fpregs size 511/);
  rejects(t, bad((b) => b.writeUInt32LE(2688, thread.at + 8 + 236)), thread.at + 4, /THREAD record: length 3496, expected 3488/);
  rejects(t, bad((b) => b.writeUInt32LE(1234, recordOf(good, RecordType.THREAD, 1).at + 8)),
    recordOf(good, RecordType.THREAD, 1).at + 8, /a second thread 1234/);
  rejects(t, bad((b) => b.writeBigUInt64LE(0x40_1000n, file1.at + 8)), file1.at + 8, /below the previous mapped file's end/);
  rejects(t, bad((b) => b.writeBigUInt64LE(0x7f00_0000_0001n, file1.at + 8)), file1.at + 8, /not page-aligned/);
  rejects(t, bad((b) => b.writeBigUInt64LE(0x7f00_0000_0000n, file1.at + 16)), file1.at + 16, /not above start/);
  rejects(t, bad((b) => b.writeUInt32LE(65, sig.at + 8)), sig.at + 8, /65 dispositions, expected 64/);
  rejects(t, bad((b) => b.writeUInt32LE(0, fd.at + 8)), fd.at + 8, /fd 0 is not above the previous fd 0/);
  rejects(t, bad((b) => b.writeUInt32LE(9, fd.at + 12)), fd.at + 12, /unknown fd kind 9/);
  rejects(t, bad((b) => b.writeUInt32LE(1, good.length - 4)), good.length - 4, /runs past/);
});

test('missing records and a misplaced END', (t) => {
  const good = encodeExtension(sampleExtension());
  const sig = recordOf(good, RecordType.SIGACTIONS);
  const noSigactions = Buffer.from(good);
  noSigactions.writeUInt32LE(0x7777, sig.at); // an unknown type now: skipped
  rejects(t, noSigactions, good.length - 8, /no SIGACTIONS record/);
  const earlyEnd = Buffer.from(good);
  const fd = recordOf(good, RecordType.FD);
  earlyEnd.writeUInt32LE(RecordType.END, fd.at);
  earlyEnd.writeUInt32LE(0, fd.at + 4);
  earlyEnd.fill(0, fd.at + 8, fd.at + 8 + Math.ceil(fd.length / 8) * 8);
  rejects(t, earlyEnd, fd.at, /END record at byte .* ends at byte/);
  const noEnd = Buffer.from(good);
  noEnd.writeUInt32LE(0x7777, good.length - 8);
  rejects(t, noEnd, good.length, /without an END record/);
});

// ---------------------------------------------------------------------------------------------
// Real targets, dumped through a mount. Targets start before the mount, so that teardown stops
// the FS (letting every task go) before it kills them.

const SIGUSR1 = 10;
const SIGUSR2 = 12;
const SIGPIPE = 13;
const SIGTERM = 15;
const SIGHUP = 1;
const SA_RESTART = 0x1000_0000n;
const SA_RESTORER = 0x0400_0000n;
const bit = (signal: number): bigint => 1n << BigInt(signal - 1);
const dumpOf = (mnt: string, pid: number) => path.join(mnt, String(pid), 'dump');

interface ExtTarget {
  target: Target;
  dir: string;
  usr1: bigint;
  usr2: bigint;
  brk: number;
  goneInode: bigint;
  mapAddress: number;
  /** Main thread first. */
  threads: { tid: number; fsBase: bigint }[];
}

async function startExtTarget(t: ExecutionContext): Promise<ExtTarget> {
  const dir = realpathSync(await makeTempDir(t, 'imgfs-ext-'));
  const target = await startTarget(t, 'ext_target', [dir]);
  const [, usr1, usr2, brk, goneInode, mapAddress, ...threads] = target.info;
  // The workers wait in pause() and the main thread in read(): let them get there.
  await waitUntil('every thread to block', () => threadStatuses(target.pid).every((s) => s.state === 'S'));
  return {
    target, dir, usr1: BigInt(`0x${usr1}`), usr2: BigInt(`0x${usr2}`), brk: parseInt(brk, 16), goneInode: BigInt(goneInode),
    mapAddress: parseInt(mapAddress, 16),
    threads: threads.map((field) => {
      const [tid, fsBase] = field.split(':');
      return { tid: Number(tid), fsBase: BigInt(`0x${fsBase}`) };
    }),
  };
}

/** What /proc says about the target, read while the open dump holds it frozen. */
function procFacts(pid: number) {
  const status = (tid: number) => readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
  const statusMask = (text: string, name: string) => BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)`, 'm').exec(text)![1]}`);
  const tids = readdirSync(`/proc/${pid}/task`).map(Number);
  const files = readMaps(pid).filter((m) => m.inode !== 0).map((m) => {
    const st = statSync(`/proc/${pid}/map_files/${m.start.toString(16)}-${m.end.toString(16)}`, { bigint: true });
    return { start: m.start, end: m.end, path: m.name, dev: st.dev, inode: st.ino, size: Number(st.size), mtimeNs: st.mtimeNs, mapsInode: m.inode };
  });
  const fds = readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b).map((fd) => {
    const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    const st = statSync(`/proc/${pid}/fd/${fd}`);
    const major = st.isCharacterDevice() ? Math.floor(st.rdev / 256) & 0xfff : -1;
    const kind = st.isFile() ? 'file' : st.isFIFO() ? 'pipe' : st.isSocket() ? 'socket'
      : [4, 5].includes(major) || (major >= 136 && major <= 143) ? 'tty' : 'other';
    const big = statSync(`/proc/${pid}/fd/${fd}`, { bigint: true });
    return {
      fd, kind, target: readlinkSync(`/proc/${pid}/fd/${fd}`),
      flags: parseInt(/^flags:\s*([0-7]+)/m.exec(info)![1], 8), offset: Number(/^pos:\s*(\d+)/m.exec(info)![1]),
      ...(kind === 'file' ? { fileState: { dev: big.dev, inode: big.ino, size: Number(big.size), mtimeNs: big.mtimeNs } } : {}),
    };
  });
  const leader = status(pid);
  const limit = (value: string) => (value === 'unlimited' ? 0xffff_ffff_ffff_ffffn : BigInt(value));
  return {
    umask: parseInt(/^Umask:\s*([0-7]+)/m.exec(leader)![1], 8),
    rlimits: readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').slice(1, 17).map((line) => {
      const [, soft, hard] = /^Max [\w ]+?\s{2,}(\S+)\s+(\S+)/.exec(line)!;
      return { soft: limit(soft), hard: limit(hard) };
    }),
    tids,
    sigBlocked: new Map(tids.map((tid) => [tid, statusMask(status(tid), 'SigBlk')])),
    sigIgnored: statusMask(leader, 'SigIgn'),
    sigCaught: statusMask(leader, 'SigCgt'),
    auxv: readFileSync(`/proc/${pid}/auxv`),
    exe: readlinkSync(`/proc/${pid}/exe`),
    cwd: readlinkSync(`/proc/${pid}/cwd`),
    files,
    fds,
    stack: stackBytes(pid),
  };
}

function stackBytes(pid: number): Buffer {
  const stack = readMaps(pid).find((m) => m.name === '[stack]')!;
  return readMem(pid, stack.start, stack.end - stack.start);
}

/** Opens the dump, reads it whole, runs whileOpen (the target is frozen meanwhile), closes it. */
async function readDump<T>(t: ExecutionContext, file: string, whileOpen: () => T): Promise<{ bytes: Buffer; size: number; facts: T }> {
  const handle = await fsp.open(file, 'r');
  t.teardown(() => handle.close().catch(() => undefined));
  try {
    const size = (await handle.stat()).size;
    const facts = whileOpen();
    const chunks: Buffer[] = [];
    for (let offset = 0; ; ) {
      const chunk = await readAt(handle, offset, 1 << 20);
      if (chunk.length === 0) break;
      chunks.push(chunk);
      offset += chunk.length;
    }
    return { bytes: Buffer.concat(chunks), size, facts };
  } finally {
    await handle.close();
  }
}

test.serial('a real target: the extension holds exactly what /proc says, and the target runs on unharmed', async (t) => {
  const ext = await startExtTarget(t);
  const { pid } = ext.target;
  const stackBefore = stackBytes(pid);
  const mnt = await mountImgfs(t);
  const file = dumpOf(mnt.dir, pid);
  const previewSize = (await fsp.stat(file)).size;
  const { bytes, size, facts } = await readDump(t, file, () => procFacts(pid));

  t.is(bytes.length, size, 'the open dump reads to its fstat size');
  t.is(previewSize, size, 'stat before the open predicts the size exactly, extension included');
  const image = parseImage(bytes);
  t.truthy(image.extension, 'the default dump carries an extension');
  const x = decodeExtension(bytes.subarray(image.end), image.end);

  t.is(x.exe, realpathSync(await buildTarget('ext_target')));
  t.is(x.exe, facts.exe);
  t.is(x.cwd, ext.dir);
  t.is(x.cwd, facts.cwd);
  t.is(x.brk, ext.brk, 'the exact, unaligned brk');
  t.is(Number(image.mm.brk), x.brk, 'v0 has the same brk');
  t.true(x.auxv.equals(facts.auxv), 'auxv');

  // Threads: all of them, the leader first, each with its own fs_base and signal mask.
  t.deepEqual(x.threads.map((th) => th.tid), [pid, ...facts.tids.filter((tid) => tid !== pid)]);
  t.deepEqual(new Set(x.threads.map((th) => th.tid)), new Set(ext.threads.map((th) => th.tid)));
  for (const { tid, fsBase } of ext.threads) {
    const th = x.threads.find((candidate) => candidate.tid === tid)!;
    t.is(th.regs.fs_base, fsBase, `thread ${tid} fs_base`);
    t.is(th.sigmask, facts.sigBlocked.get(tid)!, `thread ${tid} signal mask is SigBlk`);
    t.is(th.fpregs.length, 512);
    t.is(th.fpregs.readUInt32LE(24) & 0xffc0, 0x1f80, `thread ${tid} MXCSR in the FXSAVE area`);
    t.true(th.xstate.length >= 576, `thread ${tid} xstate holds legacy area and XSAVE header`);
    t.true(th.xstate.subarray(0, 160).equals(th.fpregs.subarray(0, 160)), `thread ${tid}: xstate's legacy x87 area is fpregs'`);
    t.is(th.tls.length, 3);
  }
  t.is(x.threads[0].sigmask, bit(SIGHUP));
  x.threads.slice(1).forEach((th) => t.true((th.sigmask & (bit(SIGUSR1) | bit(SIGUSR2))) === (bit(SIGUSR1) | bit(SIGUSR2))));
  const leader = x.threads[0].regs;
  t.is(leader.rip, image.regs.ip, 'leader registers are the v0 registers');
  t.is(leader.rsp, image.regs.sp);
  t.is(leader.rax, image.regs.ax);
  t.is(leader.orig_rax, image.regs.orig_ax);

  // Signal dispositions: as /proc's masks say, with the handlers the target printed.
  for (let signal = 1; signal <= 64; signal++) {
    const { handler } = x.sigactions[signal - 1];
    const expected = facts.sigIgnored & bit(signal) ? 'ignored' : facts.sigCaught & bit(signal) ? 'caught' : 'default';
    const got = handler === 0n ? 'default' : handler === 1n ? 'ignored' : 'caught';
    t.is(got, expected, `signal ${signal}`);
  }
  const usr1 = x.sigactions[SIGUSR1 - 1];
  t.is(usr1.handler, ext.usr1);
  t.is(usr1.flags & (SA_RESTART | SA_RESTORER), SA_RESTART | SA_RESTORER);
  t.is(usr1.mask, bit(SIGUSR2));
  t.not(usr1.restorer, 0n);
  const usr2 = x.sigactions[SIGUSR2 - 1];
  t.is(usr2.handler, ext.usr2);
  t.is(usr2.mask, bit(SIGTERM));
  t.is(x.sigactions[SIGPIPE - 1].handler, 1n);

  // Mapped files: every VMA with a file, stat'ed through map_files, and the VMAs v0 lists as files.
  t.deepEqual(x.files, facts.files.map(({ mapsInode, ...f }) => f));
  t.deepEqual(x.files.map((f) => f.inode), facts.files.map((f) => BigInt(f.mapsInode)), 'inodes as maps shows them');
  t.deepEqual(x.files.map((f) => [f.start, f.end]),
    image.vmas.filter((v) => !(v.flags & MAP_ANONYMOUS)).map((v) => [v.start, v.end]), 'the v0 VMA records without MAP_ANONYMOUS');
  const mapped = x.files.find((f) => f.start === ext.mapAddress)!;
  const mappedStat = statSync(path.join(ext.dir, 'mapped'), { bigint: true });
  t.deepEqual([mapped.path, mapped.inode, mapped.size, mapped.mtimeNs], [path.join(ext.dir, 'mapped'), mappedStat.ino, 3 * 4096, mappedStat.mtimeNs]);
  const gone = x.files.find((f) => f.path.endsWith('/gone (deleted)'))!;
  t.truthy(gone, 'the mapping of a deleted file');
  t.is(gone.inode, ext.goneInode, 'identified by its inode although deleted');
  t.is(gone.size, 4096);

  // Open file descriptors; the self-pipe's contents are checked below.
  t.deepEqual(x.fds.map(({ pipeData, ...fd }) => fd), facts.fds);

  // The umask and limits /proc shows; no interval timer is armed, no POSIX timer exists.
  t.is(x.umask, facts.umask);
  t.deepEqual(x.rlimits, facts.rlimits);
  t.deepEqual(x.itimers, Array(3).fill({ interval: { sec: 0, usec: 0 }, value: { sec: 0, usec: 0 } }));
  t.deepEqual(x.posixTimers, []);
  const data = x.fds.find((f) => f.target === path.join(ext.dir, 'data'))!;
  t.deepEqual([data.kind, data.offset, data.flags & 3], ['file', 1234, 2 /* O_RDWR */]);
  const pipes = x.fds.filter((f) => f.kind === 'pipe' && f.fd >= 3 && f.fd < 10);
  t.is(pipes.length, 2, 'both ends of the pipe');
  t.is(pipes[0].target, pipes[1].target);
  t.deepEqual(pipes[0].pipeData, { capacity: 65536, bytes: Buffer.alloc(0) }, 'the read end: a default pipe, empty (the main thread waits on it)');
  t.is(pipes[1].pipeData, undefined, 'the write end: nothing');

  // The injected rt_sigaction calls left the stack as it was, and the target runs on: its
  // handler fires, the interrupted read() restarts (SA_RESTART) and completes.
  t.true(stackBefore.equals(facts.stack), 'the scratch area below the stack pointer was put back (while frozen)');
  await waitUntil('the dump to let go', () => threadStatuses(pid).every((s) => s.tracerPid === 0));
  t.true(stackBytes(pid).equals(stackBefore), 'and the stack is unchanged after the release');
  const from = ext.target.lines().length;
  process.kill(pid, 'SIGUSR1');
  await ext.target.waitForLine((line) => line === 'handled USR1', { from });
  process.kill(pid, 'SIGUSR2');
  await ext.target.waitForLine((line) => line === 'read x', { from });
  t.false(ext.target.lines().some((line) => line.startsWith('read error')), 'read() was restarted, not failed');
  t.deepEqual(threadStatuses(pid).map((s) => s.tid).sort(), facts.tids.slice().sort(), 'every thread still there');
  t.true(ext.target.alive());
});

test.serial('--strict-v0 leaves the extension out; the v0 bytes are those of the default dump', async (t) => {
  // The kernel writes the CPU a thread runs on into its rseq area on the way back to user space,
  // which a thread restarting its system call after a freeze may take on another CPU. Without
  // rseq registration the target's memory holds only what it computes itself.
  const tunables = process.env.GLIBC_TUNABLES;
  process.env.GLIBC_TUNABLES = 'glibc.pthread.rseq=0';
  let ext: ExtTarget;
  try {
    ext = await startExtTarget(t);
  } finally {
    if (tunables === undefined) delete process.env.GLIBC_TUNABLES;
    else process.env.GLIBC_TUNABLES = tunables;
  }
  const { pid } = ext.target;
  const full = await mountImgfs(t);
  const strict = await mountImgfs(t, ['--strict-v0']);
  const strictFile = dumpOf(strict.dir, pid);
  const released = () => waitUntil('the dump to let go', () => threadStatuses(pid).every((s) => s.tracerPid === 0));
  // A first freeze may change the target once: an injected system call that borrows the [vdso]'s
  // `syscall` instruction faults that page in for good. Dumps after it agree.
  await readDump(t, strictFile, () => undefined);
  await released();
  const withExtension = await readDump(t, dumpOf(full.dir, pid), () => undefined);
  await released();
  const previewSize = (await fsp.stat(strictFile)).size;
  const v0 = await readDump(t, strictFile, () => undefined);

  const image = parseImage(v0.bytes);
  t.is(image.extension, null, 'nothing follows the terminator');
  t.is(image.end, v0.bytes.length);
  t.is(v0.size, v0.bytes.length);
  t.is(previewSize, v0.bytes.length, 'stat predicts the v0 size');
  const fullImage = parseImage(withExtension.bytes);
  t.is(fullImage.end, image.end, 'the default dump has the same v0 part, then its extension');
  // The target sat blocked in read() and pause() between the two freezes, so even the bytes agree.
  t.true(withExtension.bytes.subarray(0, fullImage.end).equals(v0.bytes), 'v0 prefix of the default dump = the strict dump');
});

test.serial('imgfs show decodes the extension; --json carries it; a corrupt extension is one line with its offset', async (t) => {
  const ext = await startExtTarget(t);
  const { pid } = ext.target;
  const mnt = await mountImgfs(t);
  const { bytes } = await readDump(t, dumpOf(mnt.dir, pid), () => undefined);
  const work = await makeTempDir(t);
  const file = path.join(work, 'task.img');
  await fsp.writeFile(file, bytes);
  const v0End = parseImage(bytes).end;

  const show = async (args: string[]) => {
    let out = '';
    let err = '';
    const status = await showMain(args, { out: (text) => { out += text; }, err: (text) => { err += text; } });
    return { status, out, err };
  };
  const text = await show([file]);
  t.is(text.status, 0, text.err);
  t.regex(text.out, new RegExp(`extension: version 1, ${bytes.length - v0End} bytes at byte ${v0End}`));
  t.regex(text.out, new RegExp(`exe  .*/ext_target\\n`));
  t.regex(text.out, new RegExp(`cwd  ${ext.dir}\\n`));
  t.regex(text.out, new RegExp(`brk  0x${ext.brk.toString(16)}\\n`));
  t.regex(text.out, /threads \(4\)/);
  t.regex(text.out, new RegExp(`SIGUSR1 +handler 0x${ext.usr1.toString(16)}  flags SA_RESTORER\\|SA_RESTART  mask 0x800`));
  t.regex(text.out, /SIGPIPE +SIG_IGN/);
  t.regex(text.out, new RegExp(`file +flags 0100002 pos 1234 ${ext.dir}/data\\n`));
  t.regex(text.out, /gone \(deleted\)\n/);

  const json = await show([file, '--json']);
  t.is(json.status, 0);
  const parsed = JSON.parse(json.out);
  t.is(parsed.extension.offset, v0End);
  t.is(parsed.extension.content.sigactions[SIGUSR1 - 1].handler, `0x${ext.usr1.toString(16)}`);
  t.is(parsed.extension.content.threads.length, 4);
  t.is(parsed.extension.content.auxv, readFileSync(`/proc/${pid}/auxv`).toString('hex'));

  const corrupt = Buffer.from(bytes);
  const brkRecord = v0End + recordOf(bytes.subarray(v0End), RecordType.BRK).at;
  corrupt.writeUInt32LE(16, brkRecord + 4); // BRK's length: 16 bytes take in the next record's header
  await fsp.writeFile(file, corrupt);
  const bad = await show([file]);
  t.is(bad.status, 1);
  t.is(bad.out, '');
  t.is(bad.err, `imgfs show: ${file}: byte ${brkRecord + 4}: BRK record: length 16, expected 8\n`);
});
