// Netlink sockets (NETLINK_SOCKET records) are made again: of their protocol, members of their
// multicast groups again, so that a program watching the kernel's events gets them, and its
// requests are answered.

import test from 'ava';
import { readlinkSync } from 'node:fs';
import { dumpToFile, killOriginal, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';

const NETLINK_ROUTE = 0;
const NETLINK_KOBJECT_UEVENT = 15;

test('a netlink socket comes back with its protocol and its groups, and answers requests', async (t) => {
  const target = await startTarget(t, 'restore_netlink');
  process.kill(target.pid, 'SIGUSR1');
  await target.waitForLine((line) => line === 'done');
  const before = target.lines().filter((line) => /^(groups|links) /.test(line));
  t.is(before[0], 'groups 1,5,32', 'as the program joined them');
  const image = await dumpToFile(t, target);
  await killOriginal(target);

  const fds = new Map((await readImageExtension(image)).fds.map((fd) => [fd.fd, fd]));
  t.deepEqual(fds.get(40)?.netlink, { type: 3, protocol: NETLINK_ROUTE, groups: [1, 5, 32] });
  t.deepEqual(fds.get(41)?.netlink, { type: 2, protocol: NETLINK_KOBJECT_UEVENT, groups: [] });
  t.true((await showText(image)).includes('netlink protocol 0 (raw), groups 1,5,32\n'));

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  t.regex(readlinkSync(`/proc/${pid}/fd/40`), /^socket:\[\d+\]$/, 'a socket, not /dev/null');
  process.kill(pid, 'SIGUSR1');
  await restorer.waitForLine((line) => line === 'done');
  t.deepEqual(restorer.lines().filter((line) => /^(groups|links) /.test(line)), before, 'the same groups, and a dump request answered as before');
  t.notRegex(restorer.stderr(), /warning: fd 4[01]/);
});
