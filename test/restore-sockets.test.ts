// Listening and bound sockets (BOUND_SOCKET records) are made again at their address, so a
// restored server answers again: TCP over IPv4 and IPv6, UDP, Unix stream and datagram sockets.

import test from 'ava';
import dgram from 'node:dgram';
import { promises as fsp, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { socketOptionText } from '../src/socketoptions.js';
import { makeTempDir } from './helpers/files.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget, type Target } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';

const TIMEOUT_MS = 10_000;

/** The first line a stream server sends on a new connection. */
function firstLine(connect: net.NetConnectOpts): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(connect);
    let text = '';
    const timer = setTimeout(() => socket.destroy(new Error(`no line from ${JSON.stringify(connect)}`)), TIMEOUT_MS);
    socket.setEncoding('utf8').on('data', (chunk) => { text += chunk; });
    socket.on('error', (err) => { clearTimeout(timer); reject(err); });
    socket.on('close', () => { clearTimeout(timer); resolve(text.split('\n')[0]); });
  });
}

/** The reply of a UDP server at 127.0.0.1:port to one datagram. */
function udpReply(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    const timer = setTimeout(() => { socket.close(); reject(new Error(`no UDP reply from port ${port}`)); }, TIMEOUT_MS);
    socket.on('message', (reply) => { clearTimeout(timer); socket.close(); resolve(reply.toString()); });
    socket.send(text, port, '127.0.0.1');
  });
}

const socketInode = (pid: number, fd: number): string => readlinkSync(`/proc/${pid}/fd/${fd}`);

/** What restore_listen's SIGUSR2 line shows of the options it set. */
const OPTIONS_SET = 'options 1 77 200000 reno 16 1 1 lo 1 1';

async function startServer(t: Parameters<typeof startTarget>[0]) {
  const socketPath = path.join(await makeTempDir(t), 'server.sock');
  const target = await startTarget(t, 'restore_listen', [socketPath]);
  const [tcp, tcp6, udp] = (await target.waitForLine((l) => l.startsWith('ready '))).split(' ').slice(1).map(Number);
  return { target, socketPath, tcp, tcp6, udp };
}

test.serial('a restored server listens and answers again on every socket it had bound', async (t) => {
  const { target, socketPath, tcp, tcp6, udp } = await startServer(t);
  t.is(await firstLine({ host: '127.0.0.1', port: tcp }), 'hello 1');
  process.kill(target.pid, 'SIGUSR2');
  const options = await target.waitForLine((line) => line.startsWith('options '));
  t.is(options, OPTIONS_SET, 'as the server set them (SO_RCVBUF doubled by the kernel)');
  const image = await dumpToFile(t, target);
  await killOriginal(target);

  const fds = new Map((await readImageExtension(image)).fds.map((fd) => [fd.fd, fd]));
  t.like(fds.get(40)?.boundSocket, { family: 2, type: 1, protocol: 6, listening: true, backlog: 37, v6only: false, reuseport: false });
  t.like(fds.get(41)?.boundSocket, { family: 10, type: 1, protocol: 6, listening: true, backlog: 5, v6only: true, reuseport: true });
  t.like(fds.get(42)?.boundSocket, { family: 2, type: 2, protocol: 17, listening: false, backlog: 0 });
  t.like(fds.get(43)?.boundSocket, { family: 1, type: 1, protocol: 0, listening: true, backlog: 9, file: { mode: 0o770, uid: 0, gid: 0 } });
  t.like(fds.get(46)?.boundSocket, { family: 1, type: 1, listening: true, backlog: 3 });
  t.is(fds.get(46)?.boundSocket?.address.subarray(2).toString('latin1'), 'rel.sock\0');
  t.like(fds.get(44)?.boundSocket, { family: 1, type: 2, protocol: 0, listening: false });
  t.like(fds.get(45)?.boundSocket, { family: 2, listening: true, backlog: 37 });
  const optionLabels = (fd: number) => fds.get(fd)?.socketOptions?.map(socketOptionText);
  t.deepEqual(optionLabels(40), ['SO_RCVBUF=200000', 'SO_KEEPALIVE=1', 'TCP_KEEPIDLE=77', 'TCP_CONGESTION="reno"', 'TCP_FASTOPEN=16'], 'what differs from a new socket');
  t.deepEqual(optionLabels(42), ['SO_BROADCAST=1', 'SO_BINDTODEVICE="lo"', 'IP_PKTINFO=1']);
  t.deepEqual(optionLabels(44), ['SO_PASSCRED=1']);
  for (const fd of [41, 43, 46]) t.is(optionLabels(fd), undefined, `fd ${fd} has the options of any new socket`);
  const shown = await showText(image);
  t.true(shown.includes(`listens: TCP 127.0.0.1:${tcp} (backlog 37)\n`), shown);
  t.true(shown.includes(`listens: TCP [::1]:${tcp6} (backlog 5, IPv6 only, SO_REUSEPORT)\n`));
  t.true(shown.includes(`bound: UDP 127.0.0.1:${udp}\n`));
  t.true(shown.includes('options SO_BROADCAST=1 SO_BINDTODEVICE="lo" IP_PKTINFO=1\n'));
  t.true(shown.includes(`listens: Unix stream ${socketPath} (backlog 9, file mode 0770 owner 0:0)\n`));
  t.true(shown.includes(`bound: Unix datagram @imgfs-listen-${target.pid}\n`));

  // The killed original left its socket files behind: the restore takes their place, as a server would.
  const relativePath = path.join(path.dirname(socketPath), 'rel.sock');
  t.true((await fsp.lstat(socketPath)).isSocket());
  t.true((await fsp.lstat(relativePath)).isSocket());
  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  t.is(await firstLine({ host: '127.0.0.1', port: tcp }), 'hello 2', 'the count goes on from the dump');
  t.is(await firstLine({ host: '::1', port: tcp6 }), 'hello 3');
  t.is(await firstLine({ path: socketPath }), 'hello 4');
  t.is(await firstLine({ path: relativePath }), 'hello 5', 'the relative path, in the restored working directory');
  t.is((await fsp.stat(socketPath)).mode & 0o7777, 0o770, 'the socket file\'s mode as it was');
  t.is(await udpReply(udp, 'ping'), 'echo ping');
  t.is(socketInode(pid, 45), socketInode(pid, 40), 'fd 45 is fd 40 dup\'d, as it was');
  const abstractInode = /\d+/.exec(socketInode(pid, 44))![0];
  const unixTable = readFileSync('/proc/net/unix', 'latin1').split('\n');
  t.true(unixTable.some((line) => line.endsWith(` @imgfs-listen-${target.pid}`) && line.split(/\s+/)[6] === abstractInode), 'fd 44 bound to its abstract name');
  t.notRegex(restorer.stderr(), /warning: fd 4[0-6]/);
  const later = restorer.lines().length;
  process.kill(pid, 'SIGUSR2');
  t.is(await restorer.waitForLine((line) => line.startsWith('options '), { from: later }), options, 'the restored sockets have them too');

  // What the kernel says of the restored sockets, in a dump of the restored process.
  const again = new Map((await readImageExtension(await dumpToFile(t, { pid } as Target))).fds.map((fd) => [fd.fd, fd]));
  for (const number of [40, 41, 42, 43, 44, 45, 46]) {
    t.deepEqual(again.get(number)?.boundSocket, fds.get(number)?.boundSocket, `fd ${number} as it was`);
    t.deepEqual(again.get(number)?.socketOptions, fds.get(number)?.socketOptions, `fd ${number}'s options as they were`);
  }
});

test.serial('a server restored while its addresses are taken: one warning per socket it cannot bind, an idle one in its place, and it waits', async (t) => {
  const { target, socketPath, tcp, tcp6, udp } = await startServer(t);
  const image = await dumpToFile(t, target);
  // The original keeps every address: no stale socket file, nothing to take over.
  const restorer = startRestorer(t, [image, '--new-pid']);
  const pid = await restorer.restoredPid();
  const addressWarnings = () => restorer.stderr().split('\n').filter((line) => /warning: fd 4\d .* again \(EADDRINUSE\): an idle .* stands in for it$/.test(line));
  // Written before the process was let go; the pipe may hand them over a little later.
  await waitUntil('the warnings', () => addressWarnings().length >= 5);
  const warnings = addressWarnings();
  t.deepEqual(warnings.map((line) => /fd (\d+)/.exec(line)![1]), ['40', '42', '43', '44', '46'], restorer.stderr());
  t.true(warnings[0].includes(`TCP 127.0.0.1:${tcp} cannot be listened on again (EADDRINUSE): an idle listener on an unused address stands in for it`));
  t.true(warnings[1].includes(`UDP 127.0.0.1:${udp} cannot be bound again (EADDRINUSE): an idle unbound socket stands in for it`));
  t.true(warnings[2].includes(`Unix stream ${socketPath} cannot be listened on again`));
  t.is(socketInode(pid, 45), socketInode(pid, 40), 'the stand-in at both numbers of the socket');
  // The v6 listener has SO_REUSEPORT, as the original's: it joins the original's group on its port.
  t.true(readFileSync('/proc/net/tcp6', 'latin1').split('\n').filter((line) => line.includes(`:${tcp6.toString(16).toUpperCase().padStart(4, '0')} `) && line.includes(' 0A ')).length >= 2, 'two listeners on the v6 port');
  t.is(await firstLine({ host: '127.0.0.1', port: tcp }), 'hello 1', 'the original still serves');
  // Of their kind, options included: a dump of the restored process records them, and the
  // listener's SO_REUSEADDR lets the restore of that, once the address is free, bind it again
  // while the stand-in's own connections linger in TIME_WAIT.
  const from = restorer.lines().length;
  process.kill(pid, 'SIGUSR2');
  t.is(await restorer.waitForLine((line) => line.startsWith('options '), { from }), OPTIONS_SET, 'the stand-ins have the options');
  // The restored server polls its sockets: with /dev/null in their place it would spin on a
  // descriptor that always reads as ready; with idle sockets it sleeps in poll.
  const cpuTicks = () => readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ').slice(11, 13).reduce((sum, n) => sum + Number(n), 0);
  const before = cpuTicks();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.true(cpuTicks() - before < 20, `${cpuTicks() - before} ticks of CPU in a second`);
});

test.serial('an option this machine refuses (a device it lacks): one warning naming it, and the socket serves without it', async (t) => {
  const { target, udp } = await startServer(t);
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  // SO_BINDTODEVICE's SOCKET_OPTIONS entry (level 1, name 25, 3 bytes): "lo" becomes a device no machine has.
  const bytes = await fsp.readFile(image);
  const entry = Buffer.from([1, 0, 0, 0, 25, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from('lo\0')]);
  const at = bytes.indexOf(entry);
  t.true(at > 0 && bytes.indexOf(entry, at + 1) < 0, 'one SO_BINDTODEVICE entry');
  bytes.write('q9', at + 16, 'latin1');
  await fsp.writeFile(image, bytes);

  const restorer = startRestorer(t, [image]);
  await restorer.restoredPid();
  await waitUntil('the warning', () => restorer.stderr().includes('SO_BINDTODEVICE'));
  t.regex(restorer.stderr(), /warning: fd 42 \(socket:\[\d+\]\): socket option SO_BINDTODEVICE \(ENODEV\) not set again\n/);
  t.is(await udpReply(udp, 'ping'), 'echo ping');
});
