// Event-loop descriptors: a pipe with both ends in the process, eventfds, epoll instances (with
// what they watch), timerfds and signalfds are recorded at the dump (the FD record, plus EVENTFD,
// EPOLL, TIMERFD and SIGNALFD records) and made again by a restore at their numbers, so an event
// loop (a C one, and Node's libuv) keeps running.

import test from 'ava';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { makeTempDir } from './helpers/files.js';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { killAndReap, startTarget, type Target } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';

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

test('a Node.js program keeps running after a restore: its setInterval counter keeps growing', async (t) => {
  const dir = await makeTempDir(t);
  const counter = path.join(dir, 'counter');
  const script = `let n = 0; setInterval(() => require('fs').writeFileSync(${JSON.stringify(counter)}, String(++n)), 100);`;
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
  await restorer.restoredPid();
  await waitUntil('the restored node program counting on', async () => (await count()) >= atDump + 5);
  t.pass();
});
