// The EVENTFD, EPOLL, TIMERFD, SIGNALFD, PIPE_DATA and UNIX_PEER records: round trips, older images
// without them, bad records, the fdinfo and sock_diag parsing that fill them and how `imgfs show`
// prints them.

import test from 'ava';
import { decodeExtension, encodeExtension, RecordType } from '../src/extension.js';
import { parseUnixDiag, type UnixSocket } from '../src/ptrace/sockdiag.js';
import { anonInodeState } from '../src/restoreinfo.js';
import { fullSampleExtension, recordOffsets, sampleExtension } from './helpers/extension-sample.js';

const withoutStates = () => {
  const ext = fullSampleExtension();
  ext.fds = ext.fds.map(({ eventfd, epoll, timerfd, signalfd, pipeData, unixPeer, queued, locks, boundSocket, socketOptions, ...fd }) => fd);
  return ext;
};

test('an image without the records (an older one) decodes with no fd state', (t) => {
  const decoded = decodeExtension(encodeExtension(withoutStates()));
  t.true(decoded.fds.every((fd) => fd.eventfd === undefined && fd.epoll === undefined && fd.timerfd === undefined && fd.signalfd === undefined && fd.pipeData === undefined && fd.unixPeer === undefined && fd.boundSocket === undefined && fd.socketOptions === undefined));
  t.deepEqual(decodeExtension(encodeExtension(sampleExtension())).fds, sampleExtension().fds);
});

test('byte layout and bad records', (t) => {
  const buf = encodeExtension(fullSampleExtension());
  const at = (type: number) => recordOffsets(buf).find((r) => r.type === type)!.at;
  const eventfd = at(RecordType.EVENTFD);
  t.deepEqual([buf.readUInt32LE(eventfd + 4), buf.readUInt32LE(eventfd + 8), buf.readUInt32LE(eventfd + 12)], [16, 1023, 1]);
  t.is(buf.readBigUInt64LE(eventfd + 16), 0xffff_ffff_ffff_fffen);
  const timerfd = at(RecordType.TIMERFD);
  t.deepEqual([buf.readUInt32LE(timerfd + 4), buf.readUInt32LE(timerfd + 8), buf.readInt32LE(timerfd + 12)], [56, 9, 1]);
  t.is(buf.readBigUInt64LE(timerfd + 8 + 24 + 8), 200_000_000n, 'it_interval.tv_nsec');
  const epoll = at(RecordType.EPOLL);
  t.deepEqual([buf.readUInt32LE(epoll + 4), buf.readUInt32LE(epoll + 8), buf.readUInt32LE(epoll + 12)], [8 + 2 * 16, 8, 2]);

  const patched = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(value, pos);
    return copy;
  };
  t.is(t.throws(() => decodeExtension(patched(eventfd + 8, 4)))?.message, `byte ${eventfd + 8}: EVENTFD record: fd 4 is "pipe:[98765]", not anon_inode:[eventfd]`);
  t.is(t.throws(() => decodeExtension(patched(eventfd + 8, 5)))?.message, `byte ${eventfd}: EVENTFD record: fd 5 has no FD record`);
  t.is(t.throws(() => decodeExtension(patched(eventfd + 12, 2)))?.message, `byte ${eventfd + 12}: EVENTFD record: unknown eventfd flags 0x2`);
  t.is(t.throws(() => decodeExtension(patched(timerfd + 8 + 24 + 8, 1_000_000_000)))?.message,
    `byte ${timerfd + 8 + 32}: TIMERFD record: timerfd: nanoseconds 1000000000 not below 1000000000`);
  t.is(t.throws(() => decodeExtension(patched(epoll + 12, 3)))?.message, `byte ${epoll + 12}: EPOLL record: 3 targets do not fit the record`);
  const signalfd = at(RecordType.SIGNALFD);
  t.is(t.throws(() => decodeExtension(patched(signalfd + 8, 8)))?.message, `byte ${signalfd + 8}: SIGNALFD record: fd 8 is "anon_inode:[eventpoll]", not anon_inode:[signalfd]`);
  const userfaultfd = at(RecordType.USERFAULTFD);
  t.deepEqual([buf.readUInt32LE(userfaultfd + 4), buf.readUInt32LE(userfaultfd + 8), buf.readUInt32LE(userfaultfd + 12)], [16, 20, 1]);
  t.is(buf.readBigUInt64LE(userfaultfd + 16), 0x108n);
  t.is(t.throws(() => decodeExtension(patched(userfaultfd + 12, 3)))?.message, `byte ${userfaultfd + 12}: USERFAULTFD record: unknown userfaultfd flags 0x3`);
  t.is(t.throws(() => decodeExtension(patched(userfaultfd + 12, 0)))?.message,
    `byte ${userfaultfd + 16}: USERFAULTFD record: userfaultfd features 0x108 without its UFFDIO_API done`);
  t.is(t.throws(() => decodeExtension(patched(userfaultfd + 8, 10)))?.message,
    `byte ${userfaultfd + 8}: USERFAULTFD record: fd 10 is "anon_inode:[signalfd]", not anon_inode:[userfaultfd]`);

  const onPipe = sampleExtension();
  onPipe.fds[2] = { ...onPipe.fds[2], eventfd: { count: 1n, semaphore: false } };
  t.throws(() => encodeExtension(onPipe), { message: 'fd 4: eventfd state on pipe:[98765], not anon_inode:[eventfd]' });
});

test('PIPE_DATA: byte layout, and only on the read end of a pipe with both ends in the process, once', (t) => {
  const ext = fullSampleExtension();
  const buf = encodeExtension(ext);
  const pipeData = recordOffsets(buf).find((r) => r.type === RecordType.PIPE_DATA)!.at;
  t.deepEqual([buf.readUInt32LE(pipeData + 4), buf.readUInt32LE(pipeData + 8), buf.readUInt32LE(pipeData + 12)], [8 + 6, 11, 131072]);
  t.deepEqual(buf.subarray(pipeData + 16, pipeData + 22), Buffer.from('x\0\xffend', 'latin1'));
  t.deepEqual(decodeExtension(buf).fds.find((fd) => fd.fd === 11)?.pipeData, ext.fds.find((fd) => fd.fd === 11)?.pipeData);

  const patched = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(value, pos);
    return copy;
  };
  t.is(t.throws(() => decodeExtension(patched(pipeData + 8, 12)))?.message,
    `byte ${pipeData + 8}: PIPE_DATA record: fd 12 is not the read end of a pipe whose two ends are in the process`);
  t.is(t.throws(() => decodeExtension(patched(pipeData + 8, 4)))?.message,
    `byte ${pipeData + 8}: PIPE_DATA record: fd 4 is not the read end of a pipe whose two ends are in the process`, 'a pipe to another process');
  t.is(t.throws(() => decodeExtension(patched(pipeData + 12, 4097)))?.message,
    `byte ${pipeData + 12}: PIPE_DATA record: pipe capacity 4097 is not a multiple of 4096 in 4096..2147483648`);

  const tooFull = fullSampleExtension();
  tooFull.fds = tooFull.fds.map((fd) => (fd.fd === 11 ? { ...fd, pipeData: { capacity: 4096, bytes: Buffer.alloc(4097) } } : fd));
  t.throws(() => encodeExtension(tooFull), { message: 'fd 11: pipe holds 4097 bytes, more than its capacity 4096' });
  const twice = fullSampleExtension();
  const i = twice.fds.findIndex((fd) => fd.fd === 11);
  twice.fds.splice(i + 1, 0, { ...twice.fds[i], fd: 15 });
  twice.fds.sort((a, b) => a.fd - b.fd);
  const first = recordOffsets(encodeExtension(twice)).find((r) => r.type === RecordType.PIPE_DATA)!.at;
  t.is(t.throws(() => decodeExtension(encodeExtension(twice)))?.message, `byte ${first + 8}: PIPE_DATA record: fd 11: a second PIPE_DATA record for "pipe:[55555]"`);
});

test('UNIX_PEER: byte layout, and only on a socket whose peer is another socket of the process', (t) => {
  const buf = encodeExtension(fullSampleExtension());
  const unixPeer = recordOffsets(buf).find((r) => r.type === RecordType.UNIX_PEER)!.at;
  t.deepEqual([buf.readUInt32LE(unixPeer + 4), buf.readUInt32LE(unixPeer + 8), buf.readUInt32LE(unixPeer + 12)], [16, 13, 1]);
  t.is(buf.readBigUInt64LE(unixPeer + 16), 77002n);
  const patched = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(value, pos);
    return copy;
  };
  t.is(t.throws(() => decodeExtension(patched(unixPeer + 8, 12)))?.message, `byte ${unixPeer + 8}: UNIX_PEER record: fd 12 is "pipe:[55555]", not a socket`);
  t.is(t.throws(() => decodeExtension(patched(unixPeer + 12, 3)))?.message, `byte ${unixPeer + 12}: UNIX_PEER record: socket type 3 is not one of a socket pair`);
  t.is(t.throws(() => decodeExtension(patched(unixPeer + 16, 77001)))?.message,
    `byte ${unixPeer + 16}: UNIX_PEER record: fd 13: its peer socket:[77001] is no other socket open in the process`);
  t.notThrows(() => decodeExtension(patched(unixPeer + 16, 4242)), 'fd 7 is a socket too: its inode is a valid peer');
});

test('sock_diag replies: each Unix socket with its type and peer, to the end of the dump; errors and malformed messages throw', (t) => {
  const message = (type: number, body: Buffer) => {
    const head = Buffer.alloc(16);
    head.writeUInt32LE(16 + body.length, 0);
    head.writeUInt16LE(type, 4);
    return Buffer.concat([head, body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
  };
  const socket = (ino: number, type: number, peer: number | null) => {
    const msg = Buffer.alloc(16);
    msg.writeUInt8(1, 0);
    msg.writeUInt8(type, 1);
    msg.writeUInt32LE(ino, 4);
    const attrs: Buffer[] = [];
    const name = Buffer.from([9, 0, 0, 0, 0x2f, 0x74, 0x6d, 0x70, 0x00, 0, 0, 0]); // UNIX_DIAG_NAME "/tmp": 9 bytes, padded
    attrs.push(name);
    if (peer !== null) {
      const attr = Buffer.alloc(8);
      attr.writeUInt16LE(8, 0);
      attr.writeUInt16LE(2, 2);
      attr.writeUInt32LE(peer, 4);
      attrs.push(attr);
    }
    return message(20, Buffer.concat([msg, ...attrs]));
  };
  const sockets = new Map<number, UnixSocket>();
  t.false(parseUnixDiag(Buffer.concat([socket(10, 1, 11), socket(11, 1, 10)]), sockets));
  t.true(parseUnixDiag(Buffer.concat([socket(12, 2, null), message(3, Buffer.alloc(4))]), sockets));
  const tmp = Buffer.from('/tmp\0', 'latin1');
  t.deepEqual([...sockets], [
    [10, { type: 1, state: 0, peer: 11, name: tmp, backlog: 0, fileInode: null }],
    [11, { type: 1, state: 0, peer: 10, name: tmp, backlog: 0, fileInode: null }],
    [12, { type: 2, state: 0, peer: 0, name: tmp, backlog: 0, fileInode: null }],
  ]);

  const error = Buffer.alloc(4);
  error.writeInt32LE(-22, 0);
  t.throws(() => parseUnixDiag(message(2, error), new Map()), { message: /sock_diag: .*Invalid argument/ });
  const cut = socket(13, 1, 14);
  t.throws(() => parseUnixDiag(cut.subarray(0, cut.length - 4), new Map()), { message: /sock_diag: message of \d+ bytes/ });
  const badAttr = socket(13, 1, 14);
  badAttr.writeUInt16LE(200, 32);
  t.throws(() => parseUnixDiag(badAttr, new Map()), { message: /sock_diag: attribute of 200 bytes/ });
  // Any bytes: a result or an Error, never anything else.
  for (let seed = 1; seed < 2000; seed++) {
    const noise = Buffer.from(Array.from({ length: 8 + (seed % 90) }, (_, i) => (seed * 31 + i * 17 + (i * i) % 7) & 0xff));
    noise.writeUInt32LE(Math.min(noise.length, 16 + (seed % 64)), 0);
    try {
      parseUnixDiag(noise, new Map());
    } catch (err) {
      if (!(err instanceof Error)) return t.fail(`seed ${seed}: threw ${String(err)}`) as never;
    }
  }
});

test('fdinfo of an eventfd, an epoll instance, a timerfd, a signalfd and a userfaultfd', (t) => {
  const head = 'pos:\t0\nflags:\t02004002\nmnt_id:\t17\nino:\t1038\n';
  t.deepEqual(anonInodeState('anon_inode:[eventfd]', `${head}eventfd-count:                5\neventfd-id: 12\neventfd-semaphore: 1\n`, 'x'),
    { eventfd: { count: 5n, semaphore: true } });
  t.deepEqual(anonInodeState('anon_inode:[eventfd]', `${head}eventfd-count: ffffffff00\n`, 'x'), { eventfd: { count: 0xffffffff00n, semaphore: false } });
  t.deepEqual(anonInodeState('anon_inode:[eventpoll]',
    `${head}tfd:       15 events:       19 data:                f  pos:0 ino:89920 sdev:f\ntfd:       17 events: 80000019 data: ffffffffffffffff  pos:0 ino:40e sdev:10\n`, 'x'),
  { epoll: [{ fd: 15, events: 0x19, data: 0xfn }, { fd: 17, events: 0x8000_0019, data: 0xffff_ffff_ffff_ffffn }] });
  t.deepEqual(anonInodeState('anon_inode:[timerfd]',
    `${head}clockid: 1\nticks: 2\nsettime flags: 01\nit_value: (0, 150927299)\nit_interval: (0, 200000000)\n`, 'x'),
  { timerfd: { clock: 1, ticks: 2n, settimeFlags: 1, value: { sec: 0, nsec: 150_927_299 }, interval: { sec: 0, nsec: 200_000_000 } } });
  t.deepEqual(anonInodeState('anon_inode:[signalfd]', `${head}sigmask:\t0000000000000200\n`, 'x'), { signalfd: { mask: 0x200n } });
  t.deepEqual(anonInodeState('anon_inode:[userfaultfd]', `${head}pending:\t0\ntotal:\t0\nAPI:\taa:80000108:80000000000001ff\n`, 'x'), { userfaultfd: { features: 0x108n } });
  t.deepEqual(anonInodeState('anon_inode:[userfaultfd]', `${head}pending:\t0\ntotal:\t0\nAPI:\taa:0:80000000000001ff\n`, 'x'), { userfaultfd: { features: null } }, 'no UFFDIO_API yet');
  t.deepEqual(anonInodeState('pipe:[1]', head, 'x'), {});
  t.throws(() => anonInodeState('anon_inode:[timerfd]', head, '/proc/1/fdinfo/3'), { message: /\/proc\/1\/fdinfo\/3 \(anon_inode:\[timerfd\]\) has no clockid field/ });
});
