// SnapshotStore's size of a file that no snapshot holds: a preview, served again only within the
// reuse window (the LOOKUP and GETATTR of one open), never to another kind or process.

import test from 'ava';
import { Layout } from '../src/extents.js';
import { SnapshotStore, type FileKind } from '../src/sessions.js';

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
