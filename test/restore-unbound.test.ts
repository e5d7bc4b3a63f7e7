// Sockets bound to no address yet (UNBOUND_SOCKET records) are made again of their kind, with the
// flags and options their later bind and use depend on: a UDP socket sends and gets its reply
// (watched by epoll again), a Unix datagram socket sends, a TCP socket binds and listens as
// IPv6 only, where /dev/null stood, on which every one of these calls fails.

import test from 'ava';
import { promises as fsp, readlinkSync } from 'node:fs';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_RAW = 3;
const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

test('unbound sockets come back of their kind, with their options, and work', async (t) => {
  const target = await startTarget(t, 'restore_unbound');
  const options = target.lines().find((line) => line.startsWith('options '));
  t.regex(options ?? '', /^options 1 \d+ 1 1$/, 'SO_BROADCAST, SO_RCVBUF, SO_REUSEADDR and IPV6_V6ONLY as the program set them');
  const image = await dumpToFile(t, target);
  await killOriginal(target);

  const fds = new Map((await readImageExtension(image)).fds.map((fd) => [fd.fd, fd]));
  const flags = { reuseaddr: false, reuseport: false, v6only: false };
  t.deepEqual(fds.get(40)?.unboundSocket, { family: AF_INET, type: SOCK_DGRAM, protocol: IPPROTO_UDP, ...flags });
  t.deepEqual(fds.get(41)?.unboundSocket, { family: AF_INET6, type: SOCK_STREAM, protocol: IPPROTO_TCP, ...flags, reuseaddr: true, v6only: true });
  t.deepEqual(fds.get(42)?.unboundSocket, { family: AF_UNIX, type: SOCK_DGRAM, protocol: 0, ...flags });
  // The kernel makes every raw socket with SO_REUSEADDR.
  t.deepEqual(fds.get(44)?.unboundSocket, { family: AF_INET, type: SOCK_RAW, protocol: IPPROTO_ICMP, ...flags, reuseaddr: true }, 'a raw socket, whose port is its protocol');
  t.deepEqual(fds.get(40)?.socketOptions?.map((o) => o.name), [6, 8], 'SO_BROADCAST and SO_RCVBUF, which differ from a new socket\'s');
  const show = await showText(image);
  t.true(show.includes('unbound: UDP over IPv4\n'), show);
  t.true(show.includes('unbound: TCP over IPv6 (SO_REUSEADDR, IPv6 only)\n'));
  t.true(show.includes('unbound: raw protocol 1 over IPv4 (SO_REUSEADDR)\n'));

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  for (const fd of [40, 41, 42, 44]) t.regex(readlinkSync(`/proc/${pid}/fd/${fd}`), /^socket:\[\d+\]$/, `fd ${fd} is a socket, not /dev/null`);
  process.kill(pid, 'SIGUSR1');
  await restorer.waitForLine((line) => line === 'done');
  const after = restorer.lines();
  t.is(after.filter((line) => line.startsWith('options ')).at(-1), options, 'the same options');
  t.deepEqual(after.filter((line) => line.startsWith('kind ')), [
    `kind 40 ${AF_INET} ${SOCK_DGRAM} ${IPPROTO_UDP}`, `kind 41 ${AF_INET6} ${SOCK_STREAM} ${IPPROTO_TCP}`,
    `kind 42 ${AF_UNIX} ${SOCK_DGRAM} 0`, `kind 44 ${AF_INET} ${SOCK_RAW} ${IPPROTO_ICMP}`,
  ]);
  t.true(after.includes('udp ping pong epoll 40'), 'the UDP socket sends and receives, and epoll watches it again');
  t.true(after.includes('unix hello'));
  t.true(after.includes('tcp listens'));
  t.notRegex(restorer.stderr(), /warning: (fd 4[0-4]|epoll)/);
});

test('an unbound socket this kernel will not make: /dev/null in its place, one warning, and the rest restored', async (t) => {
  const target = await startTarget(t, 'restore_unbound');
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  // fd 41's UNBOUND_SOCKET payload (fd 41, AF_INET6, SOCK_STREAM, IPPROTO_TCP) made to ask for
  // UDP over a stream socket, which socket(2) refuses (EPROTONOSUPPORT).
  const bytes = await fsp.readFile(image);
  const payload = Buffer.from([41, 0, 0, 0, AF_INET6, 0, SOCK_STREAM, 0, IPPROTO_TCP, 0]);
  const at = bytes.indexOf(payload);
  t.true(at > 0 && bytes.indexOf(payload, at + 1) < 0, 'one such record');
  bytes.writeUInt16LE(IPPROTO_UDP, at + 8);
  await fsp.writeFile(image, bytes);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  t.is(readlinkSync(`/proc/${pid}/fd/41`), '/dev/null');
  t.regex(readlinkSync(`/proc/${pid}/fd/40`), /^socket:\[\d+\]$/);
  // Written before the process runs, the warning may still be in the pipe when we see it run.
  await waitUntil('the warning', () => restorer.stderr().includes('warning: fd 41 '));
  t.regex(restorer.stderr(), /warning: fd 41 \(socket:\[\d+\]\): UDP over IPv6, unbound, cannot be made here \(EPROTONOSUPPORT\): replaced by \/dev\/null\n/);
  t.is(restorer.stderr().split('\n').filter((line) => line.includes('fd 4')).length, 1, 'one warning');
});
