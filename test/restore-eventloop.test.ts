// Event-loop descriptors: a pipe with both ends in the process (with its bytes), eventfds, epoll
// instances (with what they watch), timerfds and signalfds are recorded at the dump (the FD
// record, plus EVENTFD, EPOLL, TIMERFD, SIGNALFD and PIPE_DATA records) and made again by a restore
// at their numbers, so an event loop (a C one, and Node's libuv) keeps running.

import test, { type ExecutionContext } from 'ava';
import { closeSync, promises as fsp, writeSync } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { VMA_USERFAULT } from '../src/extension.js';
import { vmaFlagEntries } from '../src/extension-model.js';
import { takeDescriptor } from '../src/ptrace/libc.js';
import { makeTempDir } from './helpers/files.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { killAndReap, startTarget, type Target } from './helpers/targets.js';
import { sleep, waitUntil } from './helpers/wait.js';

test('a C event loop keeps running: self-pipe, eventfd count, epoll, timerfd ticks, signalfd', async (t) => {
  const target = await startTarget(t, 'restore_eventloop');
  await target.waitForLine((l) => l.startsWith('tick '));
  const image = await dumpToFile(t, target);
  await killOriginal(target);

  const fds = (await readImageExtension(image)).fds;
  const byFd = new Map(fds.map((fd) => [fd.fd, fd]));
  t.deepEqual(byFd.get(42)?.eventfd, { count: 5n, semaphore: false });
  t.deepEqual(byFd.get(45)?.epoll?.map((e) => [e.fd, e.data] as const).sort((a, b) => a[0] - b[0]), [[40, 1040n], [42, 1042n], [43, 1043n], [44, 1044n]]);
  t.like(byFd.get(43)?.timerfd, { clock: 1, interval: { sec: 0, nsec: 200_000_000 } });
  t.is(byFd.get(44)?.signalfd?.mask, 1n << 9n);
  const shown = await showText(image);
  t.regex(shown, /\n {2,}42 other .* anon_inode:\[eventfd\]\n +eventfd count 5\n/);
  t.regex(shown, /\n +epoll fd 40 events 0x19 data 0x410\n/);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  await restorer.waitForLine((l) => l.startsWith('tick '));
  await restorer.waitForLine((l) => l === 'eventfd ready');
  process.kill(pid, 'SIGUSR1');
  t.is(await restorer.waitForLine((l) => l.startsWith('signal ')), 'signal 10');
  process.kill(pid, 'SIGUSR2');
  t.is(await restorer.waitForLine((l) => l.startsWith('pipe ')), 'pipe x eventfd 5');
  t.notRegex(restorer.stderr(), /warning: fd 4[0-5]|epoll fd/);
});

test('a self-pipe\'s bytes come back: what was unread at the dump, in a pipe as large as it was', async (t) => {
  const target = await startTarget(t, 'restore_pipebytes');
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  const readEnd = (await readImageExtension(image)).fds.find((fd) => fd.fd === 40);
  t.deepEqual([readEnd?.pipeData?.capacity, readEnd?.pipeData?.bytes.length], [131072, 69990]);
  t.regex(await showText(image), /\n +pipe holds 69990 bytes \(capacity 131072\)\n/);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  process.kill(pid, 'SIGUSR1');
  // What the target wrote (byte i: i * 7 + i / 251) past the 10 bytes it read back.
  let sum = 0n;
  for (let i = 10; i < 70000; i++) sum += BigInt(i - 9) * BigInt((i * 7 + Math.floor(i / 251)) & 0xff);
  t.is(await restorer.waitForLine((l) => l.startsWith('pipe ')), `pipe 69990 sum ${sum} capacity 131072`);
  t.is(await restorer.exited, 0);
  t.notRegex(restorer.stderr(), /warning: (fd 4[01]|pipe fd)/);
});

test('a self-pipe made with socketpair (asyncio\'s) comes back as a socket pair, so its loop still wakes', async (t) => {
  const target = await startTarget(t, 'restore_socketpair');
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  const fds = (await readImageExtension(image)).fds;
  const [a, b] = [40, 41].map((n) => fds.find((fd) => fd.fd === n)!);
  t.deepEqual(a.unixPeer, { type: 1, peer: Number(/\d+/.exec(b.target)![0]) });
  t.deepEqual(b.unixPeer, { type: 1, peer: Number(/\d+/.exec(a.target)![0]) });
  t.regex(await showText(image), /\n +socket pair \(stream\) with socket:\[\d+\]\n/);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  await sleep(200);
  process.kill(pid, 'SIGUSR1');
  t.is(await restorer.waitForLine((l) => l.startsWith('woke ') || l === 'closed'), 'woke 1 s');
  process.kill(pid, 'SIGUSR1');
  t.is(await restorer.waitForLine((l) => l.startsWith('woke ') || l === 'closed', { from: restorer.lines().length }), 'woke 1 s');
  t.notRegex(restorer.stderr(), /warning: fd 4[01]/);
});

test.serial('bytes waiting in a socket pair at the dump (a wake-up not taken yet) are there to read after the restore', async (t) => {
  const target = await startTarget(t, 'restore_socketpair');
  // Stopped, the loop cannot read them: written through our own descriptor of its fd 41, they
  // wait in fd 40's queue.
  process.kill(target.pid, 'SIGSTOP');
  await waitUntil('the target stopped', async () => / T /.test(await fsp.readFile(`/proc/${target.pid}/stat`, 'latin1')));
  for (const [fd, messages] of [[41, ['xyz']], [43, ['first', 'second message']]] as const) {
    const ours = takeDescriptor(target.pid, fd);
    t.true(ours >= 0);
    for (const message of messages) writeSync(ours, message);
    closeSync(ours);
  }
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  const fds = (await readImageExtension(image)).fds;
  t.deepEqual(fds.find((fd) => fd.fd === 40)?.queued?.map(String), ['xyz']);
  t.deepEqual(fds.find((fd) => fd.fd === 42)?.queued?.map(String), ['first', 'second message'], 'a seqpacket pair\'s messages, one by one');
  t.is(fds.find((fd) => fd.fd === 41)?.queued, undefined);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  process.kill(pid, 'SIGCONT');
  t.is(await restorer.waitForLine((l) => l.startsWith('woke ') || l === 'closed'), 'woke 3 x');
  t.is(await restorer.waitForLine((l) => l.startsWith('message ')), 'message 5 first');
  t.is(await restorer.waitForLine((l) => l.startsWith('message ') && l !== 'message 5 first'), 'message 14 second message');
  t.notRegex(restorer.stderr(), /warning: (fd 4[0-3]|socket fd)/);
});

test('a Node.js program keeps running after a restore: its setInterval counter keeps growing, signals and child processes work', async (t) => {
  const dir = await makeTempDir(t);
  const counter = path.join(dir, 'counter');
  const events = path.join(dir, 'events');
  // libuv keeps a byte in a self-pipe as its signal lock: without it the first signal or child
  // process of the restored program waits forever.
  const script = `const fs = require('fs'); let n = 0;
    setInterval(() => fs.writeFileSync(${JSON.stringify(counter)}, String(++n)), 100);
    process.on('SIGUSR2', () => require('child_process').execFile('/bin/true', (err) =>
      fs.writeFileSync(${JSON.stringify(events)}, err ? 'child failed' : 'signal, child')));`;
  const proc = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  t.teardown(() => killAndReap(proc));
  const count = async () => Number(await fsp.readFile(counter, 'utf8').catch(() => '0'));
  await waitUntil('the node program counting', async () => (await count()) >= 3);
  const target = { pid: proc.pid!, proc } as Target;
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);
  const atDump = await count();

  // Detached: the restored process is then told apart by the pid the restorer prints, not by its executable.
  const restorer = startRestorer(t, [image, '--detach']);
  const pid = await restorer.restoredPid();
  await waitUntil('the restored node program counting on', async () => (await count()) >= atDump + 5);
  process.kill(pid, 'SIGUSR2');
  await waitUntil('the signal handled and its child process run', async () => (await fsp.readFile(events, 'utf8').catch(() => '')) === 'signal, child');
  const afterSignal = await count();
  await waitUntil('the counter still growing', async () => (await count()) >= afterSignal + 3);
  t.pass();
});

/**
 * restore_userfault (with args), dumped, killed and restored with --detach: the image, the
 * restored pid, the restorer (exited, its warnings all written), and what the process's first
 * read of its 16 pages gave.
 */
async function restoredUserfault(t: ExecutionContext, args: string[] = []) {
  const target = await startTarget(t, 'restore_userfault', args);
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  const restorer = startRestorer(t, [image, '--detach']);
  const pid = await restorer.restoredPid();
  t.is(await restorer.exited, 0, restorer.stderr());
  process.kill(pid, 'SIGUSR1');
  const pages = await restorer.waitForLine((l) => l.startsWith('pages '));
  return { target, image, pid, restorer, pages };
}

test('a userfaultfd comes back with its handshake and its registered range: pages never touched reach the program\'s own handler again', async (t) => {
  const { target, image, pid, restorer, pages } = await restoredUserfault(t);
  const [region, uffd] = [parseInt(target.info[1], 16), Number(target.info[2])];
  const ext = await readImageExtension(image);
  t.deepEqual(ext.fds.find((fd) => fd.fd === uffd)?.userfaultfd, { features: 0n });
  t.true(vmaFlagEntries(ext.vmaFlags!).some((v) => v.start === region && (v.flags & VMA_USERFAULT[0]) !== 0), 'its range registered (missing mode)');
  t.regex(await showText(image), new RegExp(`\\n +${uffd} other .* anon_inode:\\[userfaultfd\\]\\n +userfaultfd features 0x0\\n`));
  t.is(pages, `pages ${'p'.repeat(8)}${'h'.repeat(8)}`, 'the placed pages, then those its handler made');
  t.is(await fsp.readlink(`/proc/${pid}/fd/${uffd}`), 'anon_inode:[userfaultfd]');
  t.notRegex(restorer.stderr(), new RegExp(`userfault|fd ${uffd} `), 'no warning about it');
});

test('a process with two userfaultfds: its range is left unregistered, with a warning saying why, rather than given to a descriptor nobody may read', async (t) => {
  const { restorer, pages } = await restoredUserfault(t, ['spare']);
  t.regex(restorer.stderr(), /warning: userfaultfd registration is not restored on 0x[0-9a-f]+-0x[0-9a-f]+: the process had 2 userfaultfds \(fds 3, 4\), and the image does not say which one handled it: left unregistered, its untouched pages read as zeros/);
  t.is(pages, `pages ${'p'.repeat(8)}${'.'.repeat(8)}`, 'the placed pages, then zeros: no fault waits for a handler');
});

test('a range registered in write-protect mode: registered again, with one warning that the pages it protected are not', async (t) => {
  const { restorer, pages } = await restoredUserfault(t, ['wp']);
  t.regex(restorer.stderr(), /warning: userfaultfd write protection is not restored on 0x[0-9a-f]+-0x[0-9a-f]+: the pages it had write-protected are writable/);
  t.is(pages, `pages ${'p'.repeat(8)}${'h'.repeat(8)}`, 'its missing pages still reach its handler');
});
