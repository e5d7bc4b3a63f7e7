// SnapshotStore's size of a file that no snapshot holds: a preview, served again only within the
// reuse window (the LOOKUP and GETATTR of one open), never to another kind or process; and what a
// failed read does to a snapshot (nothing, unless the process has exited).

import test from 'ava';
import { Errno, ImgfsError } from '../src/errors.js';
import { Layout, LayoutBuilder } from '../src/extents.js';
import { SnapshotStore, type FileKind } from '../src/sessions.js';
import { readFileSync } from 'node:fs';
import { startTarget, waitForExit } from './helpers/targets.js';
import { sleep } from './helpers/wait.js';

function countingKind(name: string): FileKind & { calls: number[] } {
  const kind = {
    name,
    calls: [] as number[],
    layout: () => new Layout([]),
    previewSize(pid: number) {
      kind.calls.push(pid);
      return 1000 + kind.calls.length;
    },
  };
  return kind;
}

test('a preview is reused for the lookup and permission check of one open, then computed again', (t) => {
  let now = 1000;
  const store = new SnapshotStore({ freeze: true, freezeTimeoutMs: 100 }, () => now);
  const dump = countingKind('dump');
  const first = store.size(process.pid, dump);
  now += 0.9;
  t.is(store.size(process.pid, dump), first, 'within 1 ms');
  t.is(dump.calls.length, 1);
  now += 0.2;
  t.is(store.size(process.pid, dump), first + 1, '1 ms after it was computed');
  t.is(dump.calls.length, 2);
});

test('a preview is never served for another kind of file or another process', (t) => {
  const store = new SnapshotStore({ freeze: true, freezeTimeoutMs: 100 });
  const dump = countingKind('dump');
  const core = countingKind('core');
  store.size(process.pid, dump);
  store.size(process.pid, core);
  store.size(process.ppid, dump);
  t.deepEqual(dump.calls, [process.pid, process.ppid]);
  t.deepEqual(core.calls, [process.pid]);
});

test('a read that fails while the process lives fails alone: the snapshot serves on, for that file and the others', async (t) => {
  const target = await startTarget(t, 'counter');
  const store = new SnapshotStore({ freeze: true, freezeTimeoutMs: 2000 });
  t.teardown(() => store.releaseAll());
  let failures = 1;
  const flaky: FileKind = {
    name: 'flaky',
    layout: () => new LayoutBuilder().deferred(4, () => {
      if (failures-- > 0) throw new ImgfsError(Errno.EIO, 'a read that fails');
      return Buffer.from('fine');
    }).build(),
    previewSize: () => 4,
  };
  const plain: FileKind = { name: 'plain', layout: () => new LayoutBuilder().bytes(Buffer.from('plain')).build(), previewSize: () => 5 };
  const failing = await store.open(target.pid, flaky);
  const other = await store.open(target.pid, plain);
  const out = Buffer.alloc(8);
  t.throws(() => store.read(failing, out, 4, 0), { message: 'a read that fails' });
  t.is(store.read(other, out, 5, 0), 5, 'the other file of the snapshot');
  t.is(out.subarray(0, 5).toString(), 'plain');
  t.is(store.read(failing, out, 4, 0), 4, 'the same file, read again');
  t.is(out.subarray(0, 4).toString(), 'fine');

  process.kill(target.pid, 'SIGKILL');
  await waitForExit(target.proc);
  t.throws(() => store.read(other, out, 5, 0), { message: /has exited: its snapshot is gone/ }, 'bytes of the snapshot alone, once it has exited');
  t.throws(() => store.read(failing, out, 4, 0), { message: 'the process of this snapshot has exited' }, 'and from then on');
  store.close(failing);
  store.close(other);
});

test('a kind kept after close: an open within that time gets the same snapshot, the process frozen meanwhile; let go after it', async (t) => {
  const target = await startTarget(t, 'counter');
  const store = new SnapshotStore({ freeze: true, freezeTimeoutMs: 2000 });
  t.teardown(() => store.releaseAll());
  let layouts = 0;
  const kept: FileKind = { name: 'kept', layout: () => { layouts++; return new Layout([]); }, previewSize: () => 0, keptAfterCloseMs: 200 };
  const tracer = () => Number(/^TracerPid:\s+(\d+)/m.exec(readFileSync(`/proc/${target.pid}/status`, 'latin1'))![1]);
  store.close(await store.open(target.pid, kept));
  t.is(tracer(), process.pid, 'still frozen after the last close');
  store.close(await store.open(target.pid, kept));
  t.is(layouts, 1, 'the same snapshot');
  await sleep(400);
  t.is(tracer(), 0, 'let go once the time is up');
  store.close(await store.open(target.pid, kept));
  t.is(layouts, 2, 'a new snapshot after it');
});
