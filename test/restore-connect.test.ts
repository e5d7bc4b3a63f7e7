// Sockets connected to servers outside the process (CONNECTED_SOCKET records): a connected
// datagram socket is connected to its peer again; a stream connection comes back closed by its
// peer, so the restored program meets a dropped connection (end of file, EPIPE, a hang-up in
// epoll) and not a /dev/null that swallows its writes and that epoll refuses to watch.

import test from 'ava';
import dgram from 'node:dgram';
import { readlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { makeTempDir } from './helpers/files.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';
import { socketOptionText } from '../src/socketoptions.js';
import { waitUntil } from './helpers/wait.js';

const EPOLLIN = 0x1;
const EPOLLHUP = 0x10;
const EPOLLRDHUP = 0x2000;
const EPIPE = 32;

/** A server that keeps every connection open, on a TCP port of 127.0.0.1 or a Unix path; closed at teardown. */
async function holdingServer(t: Parameters<typeof startTarget>[0], where: { host: string } | { path: string }): Promise<net.AddressInfo | string> {
  const held: net.Socket[] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    held.push(socket);
  });
  t.teardown(() => {
    for (const socket of held) socket.destroy();
    server.close();
  });
  await new Promise<void>((resolve) => ('path' in where ? server.listen(where.path, resolve) : server.listen(0, where.host, resolve)));
  return server.address()!;
}

const sockaddrPort = (address: Buffer) => address.readUInt16BE(2);

/** A UDP socket bound on the loopback address of its type, and the datagrams it gets; closed at teardown. */
async function udpReceiver(t: Parameters<typeof startTarget>[0], type: 'udp4' | 'udp6') {
  const socket = dgram.createSocket(type);
  t.teardown(() => socket.close());
  const messages: { text: string; port: number }[] = [];
  socket.on('message', (message, from) => messages.push({ text: message.toString(), port: from.port }));
  await new Promise<void>((resolve) => socket.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', resolve));
  return { port: socket.address().port, messages };
}

/** The servers the client connects to: a Unix datagram receiver (a target), TCP servers over IPv4 and IPv6, a Unix stream server. */
async function startPeers(t: Parameters<typeof startTarget>[0]) {
  const dir = await makeTempDir(t);
  const datagramPath = path.join(dir, 'receiver.sock');
  const streamPath = path.join(dir, 'stream.sock');
  const receiver = await startTarget(t, 'restore_connect', ['receive', datagramPath]);
  const tcp = (await holdingServer(t, { host: '127.0.0.1' })) as net.AddressInfo;
  const tcp6 = (await holdingServer(t, { host: '::1' })) as net.AddressInfo;
  await holdingServer(t, { path: streamPath });
  return { datagramPath, streamPath, receiver, tcpPort: tcp.port, tcp6Port: tcp6.port };
}

test.serial('connections come back: a datagram socket connected to its peer again, a stream connection closed by its peer', async (t) => {
  const { datagramPath, streamPath, receiver, tcpPort, tcp6Port } = await startPeers(t);
  const udp = await udpReceiver(t, 'udp4');
  const udp6 = await udpReceiver(t, 'udp6');
  const target = await startTarget(t, 'restore_connect', [tcpPort, udp.port, datagramPath, streamPath, tcp6Port, udp6.port].map(String));
  const image = await dumpToFile(t, target);
  await killOriginal(target);

  const fds = new Map((await readImageExtension(image)).fds.map((fd) => [fd.fd, fd]));
  t.like(fds.get(40)?.connectedSocket, { family: 2, type: 1, protocol: 6, state: 1 });
  t.is(sockaddrPort(fds.get(40)!.connectedSocket!.peer), tcpPort);
  t.like(fds.get(41)?.connectedSocket, { family: 2, type: 2, protocol: 17, state: 1 });
  t.is(sockaddrPort(fds.get(41)!.connectedSocket!.peer), udp.port);
  t.like(fds.get(42)?.connectedSocket, { family: 1, type: 2, protocol: 0, local: Buffer.alloc(0) });
  t.is(fds.get(42)?.connectedSocket?.peer.subarray(2).toString('latin1'), `${datagramPath}\0`, 'the receiver\'s name');
  t.like(fds.get(43)?.connectedSocket, { family: 1, type: 1, protocol: 0, local: Buffer.alloc(0) });
  t.is(fds.get(43)?.connectedSocket?.peer.subarray(2).toString('latin1'), `${streamPath}\0`, 'an accepted socket has its listener\'s name');
  t.deepEqual(fds.get(44)?.connectedSocket, fds.get(40)?.connectedSocket, 'the dup too');
  t.like(fds.get(45)?.connectedSocket, { family: 10, type: 1, protocol: 6, state: 1 });
  t.like(fds.get(46)?.connectedSocket, { family: 10, type: 2, protocol: 17, state: 1 });
  t.is(fds.get(46)?.connectedSocket?.peer.toString('hex'), `0a00${udp6.port.toString(16).padStart(4, '0')}00000000${'00'.repeat(15)}0100000000`, 'sockaddr_in6 of [::1]');
  for (const fd of [40, 41, 42, 43]) t.is(fds.get(fd)?.boundSocket, undefined);
  // IP_TOS sets the priority its type of service maps to (6 for IPTOS_LOWDELAY) too.
  t.deepEqual(fds.get(41)?.socketOptions?.map(socketOptionText), ['SO_PRIORITY=6', 'IP_TOS=16'], 'a connected datagram socket\'s options');
  const tcpLocal = sockaddrPort(fds.get(40)!.connectedSocket!.local);
  const udpLocal = sockaddrPort(fds.get(41)!.connectedSocket!.local);
  const udp6Local = sockaddrPort(fds.get(46)!.connectedSocket!.local);
  const shown = await showText(image);
  t.true(shown.includes(`connected (ESTABLISHED): TCP 127.0.0.1:${tcpLocal} to 127.0.0.1:${tcpPort}\n`), shown);
  t.true(shown.includes(`connected (ESTABLISHED): Unix datagram (unnamed) to ${datagramPath}\n`));
  t.true(shown.includes(`connected (ESTABLISHED): UDP [::1]:${udp6Local} to [::1]:${udp6.port}\n`));

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  t.is(readlinkSync(`/proc/${pid}/fd/44`), readlinkSync(`/proc/${pid}/fd/40`), 'fd 44 is fd 40 dup\'d, as it was');
  process.kill(pid, 'SIGUSR1');
  await restorer.waitForLine((line) => line === 'done');
  const said = (prefix: string) => restorer.lines().find((line) => line.startsWith(prefix));
  const hello = `hello ${pid}`;
  t.is(said('sent udp'), `sent udp ${hello.length} 0`);
  t.is(said('sent unixdgram'), `sent unixdgram ${hello.length} 0`);
  t.is(said('sent udp6'), `sent udp6 ${hello.length} 0`);
  t.is(said('tos '), 'tos 10', 'set again');
  await waitUntil('the datagrams', () => udp.messages.length > 0 && udp6.messages.length > 0 && receiver.lines().includes(hello));
  t.deepEqual(udp.messages, [{ text: hello, port: udpLocal }], 'from the same local port, its original one being free');
  t.deepEqual(udp6.messages, [{ text: hello, port: udp6Local }]);
  const [count, fd, events] = said('epoll ')!.split(' ').slice(1);
  t.deepEqual([count, fd], ['1', '40'], 'epoll watches the connection again and reports it');
  t.is(parseInt(events, 16), EPOLLIN | EPOLLHUP | EPOLLRDHUP, 'as a connection its peer closed');
  t.is(said('tcp '), `tcp read 0 0 write -1 ${EPIPE}`, 'end of file, then EPIPE');
  t.is(said('unix '), `unix read 0 0 write -1 ${EPIPE}`);
  t.is(said('tcp6 '), `tcp6 read 0 0 write -1 ${EPIPE}`);
  await waitUntil('the warnings', () => restorer.stderr().includes('fd 45'));
  const warnings = restorer.stderr().split('\n').filter((line) => line.includes('warning: fd 4'));
  t.deepEqual(warnings.map((line) => /fd (\d+)/.exec(line)![1]), ['40', '43', '45'], restorer.stderr());
  t.regex(warnings[0], new RegExp(`fd 40 \\(socket:\\[\\d+\\]\\): TCP 127\\.0\\.0\\.1:${tcpLocal} to 127\\.0\\.0\\.1:${tcpPort}: ` +
    'a connection cannot be restored: it comes back closed by its peer \\(reads end, writes fail with EPIPE\\)$'));
});

test.serial('a datagram peer that is gone: one warning, a socket connected to nothing in its place, and the program goes on', async (t) => {
  const { datagramPath, streamPath, receiver, tcpPort, tcp6Port } = await startPeers(t);
  const target = await startTarget(t, 'restore_connect', [tcpPort, 9, datagramPath, streamPath, tcp6Port, 9].map(String));
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  await killOriginal(receiver);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  await waitUntil('the warning', () => restorer.stderr().includes('fd 42'));
  t.regex(restorer.stderr(), new RegExp(`warning: fd 42 \\(socket:\\[\\d+\\]\\): Unix datagram \\(unnamed\\) to ${datagramPath.replace(/[.]/g, '\\.')}: ` +
    'cannot be connected again \\(ECONNREFUSED\\): a socket connected to nothing stands in for it'));
  process.kill(pid, 'SIGUSR1');
  await restorer.waitForLine((line) => line === 'done');
  t.is(restorer.lines().find((line) => line.startsWith('sent unixdgram')), 'sent unixdgram -1 107', 'ENOTCONN: it sends nowhere');
});
