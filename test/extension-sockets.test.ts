// Listening and bound sockets: the BOUND_SOCKET record (byte layout, bad records), what
// inet_diag replies tell of a socket, and how a socket's address reads in messages.

import test from 'ava';
import { decodeExtension, encodeExtension, RecordType } from '../src/extension.js';
import { describeSocket, type BoundSocket } from '../src/extension-model.js';
import { parseInetDiag, type InetSocket } from '../src/ptrace/sockdiag.js';
import { socketOptionText } from '../src/socketoptions.js';
import { fullSampleExtension, recordOffsets, SAMPLE_SOCKET_OPTIONS } from './helpers/extension-sample.js';

test('BOUND_SOCKET: byte layout, and records that describe no socket a restore can bind', (t) => {
  const buf = encodeExtension(fullSampleExtension());
  const at = recordOffsets(buf).find((r) => r.type === RecordType.BOUND_SOCKET)!.at;
  // Payload: fd, family, type, protocol, flags (1 listening, 2 v6only, 4 SO_REUSEPORT, 8 file),
  // backlog, file mode, uid, gid, pad, then the sockaddr.
  t.deepEqual([buf.readUInt32LE(at + 4), buf.readUInt32LE(at + 8)], [32 + 16, 30]);
  t.deepEqual([0, 1, 2, 3].map((i) => buf.readUInt16LE(at + 12 + 2 * i)), [2, 1, 6, 1 | 4]);
  t.is(buf.readUInt32LE(at + 20), 511);
  t.is(buf.subarray(at + 40, at + 56).toString('hex'), '02001f907f0000010000000000000000');

  const patched = (pos: number, write: (b: Buffer) => void) => {
    const copy = Buffer.from(buf);
    write(copy.subarray(pos));
    return () => decodeExtension(copy);
  };
  const payload = at + 8;
  const cases: [number, (b: Buffer) => void, string][] = [
    [payload, (b) => b.writeUInt32LE(12, 0), 'fd 12 is "pipe:[55555]", not a socket'],
    [payload + 4, (b) => b.writeUInt16LE(3, 0), 'the address is no sockaddr of family 3'],
    [payload + 6, (b) => b.writeUInt16LE(2, 0), 'socket type 2 for protocol 6'],
    [payload + 8, (b) => b.writeUInt16LE(1, 0), 'protocol 1 is neither TCP nor UDP'],
    [payload + 10, (b) => b.writeUInt16LE(0x11, 0), 'unknown flags 0x11'],
    [payload + 10, (b) => b.writeUInt16LE(9, 0), 'a socket file for a socket not bound to a path'],
    [payload + 10, (b) => b.writeUInt16LE(3, 0), 'IPV6_V6ONLY on a socket that is not IPv6'],
    [payload + 10, (b) => b.writeUInt16LE(0, 0), 'a stream socket that does not listen'],
  ];
  for (const [pos, write, message] of cases) {
    const error = t.throws(patched(pos, write));
    t.true(error?.message.endsWith(`BOUND_SOCKET record: ${message}`), `${error?.message} (expected: ${message})`);
    t.regex(error?.message ?? '', /^byte \d+: /);
  }
  for (const pos of [16, 20, 24]) {
    t.is(t.throws(patched(payload + pos, (b) => b.writeUInt32LE(1, 0)))?.message, `byte ${payload + pos}: BOUND_SOCKET record: not 0 without a socket file`);
  }
  t.is(t.throws(patched(payload + 28, (b) => b.writeUInt32LE(1, 0)))?.message, `byte ${payload + 28}: BOUND_SOCKET record: pad is not 0`);
  const unixRecord = recordOffsets(buf).filter((r) => r.type === RecordType.BOUND_SOCKET)[1].at;
  t.is(t.throws(patched(unixRecord + 8 + 10, (b) => b.writeUInt16LE(8, 0)))?.message,
    `byte ${unixRecord + 8 + 10}: BOUND_SOCKET record: a socket file for a socket not bound to a path`, 'the abstract name has no file');
  t.is(t.throws(patched(unixRecord + 8 + 10, (b) => b.writeUInt16LE(4, 0)))?.message, `byte ${unixRecord + 8 + 10}: BOUND_SOCKET record: SO_REUSEPORT on a Unix socket`);
  const tooShort = t.throws(() => encodeExtension({ ...fullSampleExtension(), fds: [{ fd: 30, kind: 'socket', flags: 0, offset: 0, target: 'socket:[1]', boundSocket: { ...inet(), address: Buffer.alloc(15) } }] }));
  t.regex(tooShort?.message ?? '', /fd 30: the address is no sockaddr of family 2|an address of family 2 has 16 bytes, not 15/);
});

test('BOUND_SOCKET: a Unix socket bound to a path carries its file\'s mode and owner', (t) => {
  const socket: BoundSocket = {
    family: 1, type: 1, protocol: 0, listening: true, backlog: 9, v6only: false, reuseport: false,
    file: { mode: 0o770, uid: 0, gid: 1000 }, address: Buffer.from('\x01\x00/run/a.sock\0', 'latin1'),
  };
  const ext = { ...fullSampleExtension(), fds: [{ fd: 30, kind: 'socket' as const, flags: 2, offset: 0, target: 'socket:[9]', boundSocket: socket }] };
  const buf = encodeExtension(ext);
  t.deepEqual(decodeExtension(buf).fds[0].boundSocket, socket);
  const at = recordOffsets(buf).find((r) => r.type === RecordType.BOUND_SOCKET)!.at + 8;
  t.deepEqual([buf.readUInt16LE(at + 10), buf.readUInt32LE(at + 16), buf.readUInt32LE(at + 20), buf.readUInt32LE(at + 24)], [1 | 8, 0o770, 0, 1000]);
  const copy = Buffer.from(buf);
  copy.writeUInt32LE(0o10770, at + 16);
  t.is(t.throws(() => decodeExtension(copy))?.message, `byte ${at + 16}: BOUND_SOCKET record: socket file mode 10770 is not permission bits`);
});

const inet = (): BoundSocket => ({ family: 2, type: 1, protocol: 6, listening: true, backlog: 1, v6only: false, reuseport: false, address: Buffer.from('020000507f0000010000000000000000', 'hex') });

test('describeSocket: addresses as people write them', (t) => {
  const v6 = (hex: string, port = 443) => {
    const address = Buffer.alloc(28);
    address.writeUInt16LE(10, 0);
    address.writeUInt16BE(port, 2);
    Buffer.from(hex, 'hex').copy(address, 8);
    return describeSocket({ family: 10, type: 1, protocol: 6, listening: true, backlog: 1, v6only: true, reuseport: false, address });
  };
  t.is(describeSocket(inet()), 'TCP 127.0.0.1:80');
  t.is(v6('00000000000000000000000000000001'), 'TCP [::1]:443');
  t.is(v6('00000000000000000000000000000000'), 'TCP [::]:443');
  t.is(v6('20010db8000000000001000000000001'), 'TCP [2001:db8::1:0:0:1]:443', 'the longest run of zeros, the first of equals');
  t.is(v6('20010db8000100010001000100010001'), 'TCP [2001:db8:1:1:1:1:1:1]:443');
  const unix = (name: string, type = 1) => describeSocket({ family: 1, type, protocol: 0, listening: type !== 2, backlog: 0, v6only: false, reuseport: false, address: Buffer.from(`\x01\x00${name}`, 'latin1') });
  t.is(unix('/run/a.sock\0'), 'Unix stream /run/a.sock');
  t.is(unix('\0abstract', 2), 'Unix datagram @abstract');
  t.is(unix('rel', 5), 'Unix seqpacket rel');
});

/** An inet_diag reply message for one socket; peer: its port and address, for a connection. */
function inetMessage(family: number, state: number, port: number, address: number[], inode: number, wqueue: number, v6only?: number, peer?: [number, number[]]): Buffer {
  const msg = Buffer.alloc(72);
  msg.writeUInt8(family, 0);
  msg.writeUInt8(state, 1);
  msg.writeUInt16BE(port, 4);
  Buffer.from(address).copy(msg, 8);
  if (peer) {
    msg.writeUInt16BE(peer[0], 6);
    Buffer.from(peer[1]).copy(msg, 24);
  }
  msg.writeUInt32LE(3, 40); // interface
  msg.writeUInt32LE(wqueue, 60);
  msg.writeUInt32LE(inode, 68);
  const attrs = v6only === undefined ? Buffer.alloc(0) : Buffer.from([5, 0, 11, 0, v6only, 0, 0, 0]);
  const head = Buffer.alloc(16);
  head.writeUInt32LE(16 + 72 + (v6only === undefined ? 0 : 5), 0);
  head.writeUInt16LE(20, 4);
  return Buffer.concat([head, msg, attrs]);
}

test('inet_diag replies: each socket with its state, its address as bind takes it, its peer\'s, a listener\'s backlog, IPv6 only', (t) => {
  const done = Buffer.alloc(20);
  done.writeUInt32LE(20, 0);
  done.writeUInt16LE(3, 4);
  const sockets = new Map<number, InetSocket>();
  t.false(parseInetDiag(inetMessage(2, 10, 8080, [127, 0, 0, 1], 501, 128), 6, sockets));
  const loopback6 = [...Array(15).fill(0), 1];
  t.true(parseInetDiag(Buffer.concat([inetMessage(10, 7, 53, loopback6, 502, 0, 1), done]), 17, sockets));
  t.deepEqual(sockets.get(501), {
    family: 2, protocol: 6, state: 10, address: Buffer.from('02001f907f0000010000000000000000', 'hex'), peer: Buffer.from('02000000000000000000000000000000', 'hex'), backlog: 128, v6only: false,
  });
  parseInetDiag(inetMessage(2, 1, 40000, [10, 0, 0, 5], 503, 0, undefined, [5432, [10, 0, 0, 9]]), 6, sockets);
  t.like(sockets.get(503), { state: 1, backlog: 0 });
  t.is(sockets.get(503)!.peer.toString('hex'), '020015380a0000090000000000000000', 'the peer as connect takes it');
  const udp6 = sockets.get(502)!;
  t.like(udp6, { family: 10, protocol: 17, state: 7, backlog: 0, v6only: true });
  t.is(udp6.address.toString('hex'), `0a000035${'00'.repeat(4)}${'00'.repeat(15)}01${'03000000'}`, 'sockaddr_in6 with the interface as scope');

  t.throws(() => parseInetDiag(inetMessage(1, 10, 0, [], 1, 0), 6, new Map()), { message: /address family 1 in an inet_diag reply/ });
  const cut = inetMessage(2, 10, 1, [127, 0, 0, 1], 1, 0, 1);
  t.throws(() => parseInetDiag(cut.subarray(0, cut.length - 8), 6, new Map()), { message: /sock_diag: message of \d+ bytes/ });
  // Any bytes: a result or an Error, never anything else.
  for (let seed = 1; seed < 2000; seed++) {
    const noise = Buffer.from(Array.from({ length: 16 + (seed % 120) }, (_, i) => (seed * 37 + i * 13 + (i * i) % 11) & 0xff));
    noise.writeUInt32LE(Math.min(noise.length, 16 + (seed % 110)), 0);
    noise.writeUInt16LE(seed % 3 === 0 ? 20 : seed % 5, 4);
    try {
      parseInetDiag(noise, 6, new Map());
    } catch (err) {
      if (!(err instanceof Error)) return t.fail(`seed ${seed}: threw ${String(err)}`) as never;
    }
  }
});

test('SOCKET_OPTIONS: byte layout, and bad records', (t) => {
  const buf = encodeExtension(fullSampleExtension());
  const at = recordOffsets(buf).find((r) => r.type === RecordType.SOCKET_OPTIONS)!.at;
  const payload = at + 8;
  t.deepEqual([buf.readUInt32LE(at + 4), buf.readUInt32LE(payload), buf.readUInt32LE(payload + 4)], [8 + 2 * 32, 30, 2], 'length, fd, count');
  t.deepEqual([0, 4, 8, 12].map((i) => buf.readUInt32LE(payload + 8 + i)), [1, 9, 4, 0], 'level, name, length, pad');
  t.deepEqual(buf.subarray(payload + 24, payload + 40), Buffer.from([1, ...Array<number>(15).fill(0)]), 'the value, zero-padded');
  t.is(buf.subarray(payload + 56, payload + 59).toString(), 'bbr');
  t.deepEqual(decodeExtension(buf).fds.find((fd) => fd.fd === 30)?.socketOptions?.map(socketOptionText), ['SO_KEEPALIVE=1', 'TCP_CONGESTION="bbr"']);

  const broken = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(value, pos);
    return t.throws(() => decodeExtension(copy))?.message;
  };
  t.is(broken(payload, 13), `byte ${payload}: SOCKET_OPTIONS record: fd 13 has no BOUND_SOCKET or UNBOUND_SOCKET record, nor a CONNECTED_SOCKET record of a datagram socket`);
  t.regex(broken(payload + 4, 3) ?? '', /SOCKET_OPTIONS record: 3 options do not fit the record/);
  t.is(broken(payload + 16, 0), `byte ${payload + 16}: SOCKET_OPTIONS record: option 0: a value of 0 bytes (1..16)`);
  t.is(broken(payload + 16, 17), `byte ${payload + 16}: SOCKET_OPTIONS record: option 0: a value of 17 bytes (1..16)`);
  t.is(broken(payload + 20, 1), `byte ${payload + 20}: SOCKET_OPTIONS record: option 0: pad is not 0`);
  t.is(broken(payload + 28, 1), `byte ${payload + 28}: SOCKET_OPTIONS record: option 0: the value is not zero-padded`);
  t.regex(t.throws(() => encodeExtension({ ...fullSampleExtension(), fds: fullSampleExtension().fds.map((fd) => (fd.fd === 30 ? { ...fd, socketOptions: [{ level: 1, name: 25, value: Buffer.alloc(17) }] } : fd)) }))?.message ?? '',
    /fd 30: SO_BINDTODEVICE has a value of 17 bytes \(1\.\.16\)/);
  // A connected datagram socket keeps its options (it is connected again); a connection does not (it comes back closed).
  const optioned = (fd: number, type: number) => ({
    ...fullSampleExtension(),
    fds: fullSampleExtension().fds.map((f) => (f.fd === fd ? { ...f, connectedSocket: { ...f.connectedSocket!, type }, socketOptions: SAMPLE_SOCKET_OPTIONS.slice(0, 1) } : f)),
  });
  t.deepEqual(decodeExtension(encodeExtension(optioned(33, 2))).fds.find((fd) => fd.fd === 33)?.socketOptions, SAMPLE_SOCKET_OPTIONS.slice(0, 1));
  t.regex(t.throws(() => encodeExtension(optioned(33, 1)))?.message ?? '', /fd 33: socket options of a socket neither bound, unbound nor a connected datagram socket/);
});

test('SOCKET_DATA: byte layout, and bad records', (t) => {
  const buf = encodeExtension(fullSampleExtension());
  const at = recordOffsets(buf).find((r) => r.type === RecordType.SOCKET_DATA)!.at;
  const payload = at + 8;
  t.deepEqual([buf.readUInt32LE(at + 4), buf.readUInt32LE(payload), buf.readUInt32LE(payload + 4)], [8 + 8 + 8, 13, 1], 'length, fd, messages');
  t.deepEqual([buf.readUInt32LE(payload + 8), buf.readUInt32LE(payload + 12)], [5, 0], 'the message\'s length and pad');
  t.is(buf.subarray(payload + 16, payload + 21).toString('latin1'), '\0wake');
  t.deepEqual(decodeExtension(buf).fds.find((fd) => fd.fd === 13)?.queued?.map((m) => m.toString('latin1')), ['\0wake']);
  const broken = (pos: number, value: number) => {
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(value, pos);
    return t.throws(() => decodeExtension(copy))?.message;
  };
  t.is(broken(payload, 30), `byte ${payload}: SOCKET_DATA record: fd 30 is no end of a socket pair`);
  t.is(broken(payload + 4, 2), `byte ${payload + 4}: SOCKET_DATA record: 2 messages do not fit the record`);
  t.is(broken(payload + 12, 1), `byte ${payload + 12}: SOCKET_DATA record: message 0: pad is not 0`);
  t.is(broken(payload + 8, 9), `byte ${payload + 8}: SOCKET_DATA record: message 0: 9 bytes run past the record`);
  t.is(broken(payload + 8, 4), `byte ${payload + 20}: SOCKET_DATA record: message 0 is not zero-padded`);
  t.regex(t.throws(() => encodeExtension({ ...fullSampleExtension(), fds: fullSampleExtension().fds.map((fd) => (fd.fd === 30 ? { ...fd, queued: [Buffer.from('x')] } : fd)) }))?.message ?? '',
    /fd 30: queued messages of a socket that is no end of a socket pair/);
});
