// --pid-ns: where the dumped pid is in use (here by the dumped process itself, still running),
// the restored process keeps its pid and thread ids in a PID namespace of its own, so that a
// program that remembers its ids goes on: its signals to itself reach their threads, it forks and
// waits. The namespace's init waits for it and ends with it.

import test from 'ava';
import { promises as fsp, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { NT_PRPSINFO, NT_PRSTATUS, parseElfCore, PRSTATUS_PID } from './helpers/elfcore.js';
import { mountImgfs } from './helpers/mount.js';
import { dumpToFile, readImageExtension, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';

/** The ids a task has from ours inwards: NSpid of /proc/<pid>/status. */
const nsPids = (pid: number) => /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1].trim().split(/\s+/).map(Number);

/** Whether pid is gone or a zombie. */
function ended(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

/** The other processes in the pid namespace of pid: their pid here, their pid in there, their name. */
function namespaceMates(pid: number): { pid: number; inside: number; comm: string }[] {
  const namespace = readlinkSync(`/proc/${pid}/ns/pid`);
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).flatMap((other) => {
    try {
      if (other === pid || ended(other) || readlinkSync(`/proc/${other}/ns/pid`) !== namespace) return [];
      return [{ pid: other, inside: nsPids(other).at(-1)!, comm: readFileSync(`/proc/${other}/comm`, 'utf8').trim() }];
    } catch {
      return [];
    }
  });
}

test('--pid-ns: a process whose pid is in use keeps it, and its thread ids, in a PID namespace of its own', async (t) => {
  const target = await startTarget(t, 'restore_pidns');
  const [pid, tid] = target.info.slice(1).map(Number);
  t.is(pid, target.pid);
  const image = await dumpToFile(t, target);

  const restorer = startRestorer(t, [image, '--pid-ns']);
  const restored = await restorer.restoredPid();
  t.not(restored, pid, 'the dumped process still holds its pid here');
  t.deepEqual(nsPids(restored), [restored, pid], 'and the restored process has it in its namespace');
  t.deepEqual(readdirSync(`/proc/${restored}/task`).map((task) => nsPids(Number(task)).at(-1)).sort(), [pid, tid].sort(), 'its threads keep their ids in there');
  const warning = new RegExp(`warning: pid ${pid} is in use by another process: the process keeps it in a PID namespace of its own \\(pid ${restored} outside it\\)\\n`);
  // Written before the process runs, the warning may still be in the pipe when we see it run.
  await waitUntil('the warning', () => warning.test(restorer.stderr()), 5000).catch(() => undefined);
  t.regex(restorer.stderr(), warning);
  const [init] = namespaceMates(restored);
  t.like(init, { inside: 1, comm: 'imgfs-pidns' }, "the namespace's init");
  t.is(namespaceMates(restored).length, 1, 'and nothing else');

  process.kill(restored, 'SIGUSR1');
  await restorer.waitForLine((line) => line === 'done');
  const said = restorer.lines();
  t.true(said.includes(`pid ${pid} cached ${pid} tid ${tid}`), said.join('\n'));
  t.true(said.includes('signals 2'), 'pthread_kill and a tgkill with the ids it remembers reach its thread');
  t.true(said.includes('child 7'), 'it forks and waits in its namespace');

  const again = await readImageExtension(await dumpToFile(t, { ...target, pid: restored }));
  t.deepEqual(again.threads.map((thread) => thread.tid), [pid, tid], 'a dump of it records the ids it knows itself by');
  // Its core too, as the kernel's dumper writes them: the ids glibc holds, which gdb matches its threads by.
  const mnt = await mountImgfs(t);
  const notes = parseElfCore(await fsp.readFile(path.join(mnt.dir, String(restored), 'core'))).notes;
  t.deepEqual(notes.filter((note) => note.type === NT_PRSTATUS).map((note) => note.desc.readInt32LE(PRSTATUS_PID)), [pid, tid], 'NT_PRSTATUS pids');
  const psinfo = notes.find((note) => note.type === NT_PRPSINFO)!.desc;
  t.deepEqual([24, 28].map((at) => psinfo.readInt32LE(at)), [pid, 0], 'NT_PRPSINFO pid, and 0 for its parent (the restorer), outside its namespace');

  process.kill(pid, 'SIGUSR1');
  await target.waitForLine((line) => line === 'done');
  t.true(target.lines().includes(`pid ${pid} cached ${pid} tid ${tid}`), 'the dumped process runs on, untouched');

  process.kill(restored, 'SIGKILL');
  t.is(await restorer.exited, 128 + 9, 'the restorer reports the restored process\'s end');
  await waitUntil("the namespace's init to end with it", () => ended(init.pid));
});

test('--pid-ns with --new-pid: a usage error', async (t) => {
  const restorer = startRestorer(t, ['/nonexistent.img', '--pid-ns', '--new-pid']);
  t.is(await restorer.exited, 2);
  t.is(restorer.stderr(), 'imgfs restore: --pid-ns and --new-pid exclude each other (imgfs restore --help)\n');
});
