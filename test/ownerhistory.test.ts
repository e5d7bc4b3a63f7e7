import test from 'ava';
import { OWNER_MEMORY_MS, OwnerHistory } from '../src/ownerhistory.js';

test('OwnerHistory: users other than root and the owner now, shown lately, of that very process', (t) => {
  let now = 0;
  const history = new OwnerHistory(() => now);
  history.note(100, 5, 1000);
  history.note(100, 5, 0);
  t.deepEqual(history.othersThan(100, 5, 1000), [], 'the same user: the check let in whom it should');
  t.deepEqual(history.othersThan(100, 5, 0), [1000], 'shown as a user\'s, root\'s now (a set-user-ID program)');
  t.deepEqual(history.othersThan(100, 6, 0), [], 'another process at the same pid');
  t.deepEqual(history.othersThan(101, 5, 0), []);
  history.note(100, 5, 1001);
  t.deepEqual(history.othersThan(100, 5, 0).sort(), [1000, 1001]);
  now = OWNER_MEMORY_MS / 2;
  history.note(100, 5, 1001);
  now = OWNER_MEMORY_MS + 1;
  t.deepEqual(history.othersThan(100, 5, 0), [1001], 'uid 1000 was shown too long ago to count');
  now = OWNER_MEMORY_MS * 3;
  history.note(200, 1, 1000);
  t.deepEqual(history.othersThan(100, 5, 0), [], 'forgotten');
});
