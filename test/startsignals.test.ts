import test from 'ava';
import { parseSignalMask } from '../src/startsignals.js';

test('parseSignalMask: the signals of a SigIgn mask; nothing for malformed text', (t) => {
  t.deepEqual([...parseSignalMask('0000000000001007')].sort(), ['SIGHUP', 'SIGINT', 'SIGPIPE', 'SIGQUIT']);
  t.deepEqual([...parseSignalMask('0000000000000000')], []);
  t.deepEqual([...parseSignalMask('8000000000000000')], [], 'signal 64 has no name');
  for (const text of ['', 'zz', '1 2', '0x1', '1'.repeat(17)]) t.deepEqual([...parseSignalMask(text)], [], JSON.stringify(text));
});
