import test from 'ava';
import { OwnerHistory } from '../src/ownerhistory.js';

test('OwnerHistory: users other than root and the owner now, ever shown, of that very process; forgotten once it has exited', (t) => {
  let now = 0;
  const alive = new Set(['100/5', '101/5']);
  const history = new OwnerHistory((pid, startTime) => alive.has(`${pid}/${startTime}`), () => now);
  history.note(100, 5, 1000);
  history.note(100, 5, 0);
  t.deepEqual(history.othersThan(100, 5, 1000), [], 'the same user: the check let in whom it should');
  t.deepEqual(history.othersThan(100, 5, 0), [1000], 'shown as a user\'s, root\'s now (a set-user-ID program)');
  t.deepEqual(history.othersThan(100, 6, 0), [], 'another process at the same pid');
  t.deepEqual(history.othersThan(101, 5, 0), []);
  history.note(100, 5, 1001);
  t.deepEqual(history.othersThan(100, 5, 0).sort(), [1000, 1001]);
  now = 3_600_000;
  history.note(101, 5, 1000);
  t.deepEqual(history.othersThan(100, 5, 0).sort(), [1000, 1001], 'however long ago: a request may wait behind slow ones');
  alive.delete('100/5');
  now += 10_000;
  history.note(101, 5, 1000);
  t.deepEqual(history.othersThan(100, 5, 0), [], 'forgotten once the process has exited');
  t.deepEqual(history.othersThan(101, 5, 0), [1000]);
});
