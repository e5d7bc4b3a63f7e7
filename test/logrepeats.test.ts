import test from 'ava';
import { squeezeRepeats } from '../src/logrepeats.js';
import { sleep } from './helpers/wait.js';

test('a line said back to back is written once, then how many more times it came, when another comes', (t) => {
  const written: string[] = [];
  const { log } = squeezeRepeats((line) => written.push(line));
  for (const line of ['a', 'b', 'b', 'b', 'c', 'a', 'a', 'b']) log(line);
  t.deepEqual(written, ['a', 'b', 'the line before came 2 more times', 'c', 'a', 'the line before came 1 more time', 'b']);
});

test('repeats are counted in the log after a while even when nothing else comes, and at a flush', async (t) => {
  const written: string[] = [];
  const { log, flush } = squeezeRepeats((line) => written.push(line), 50);
  log('x');
  log('x');
  log('x');
  t.deepEqual(written, ['x']);
  await sleep(200);
  t.deepEqual(written, ['x', 'the line before came 2 more times']);
  log('x');
  flush();
  flush();
  t.deepEqual(written, ['x', 'the line before came 2 more times', 'the line before came 1 more time']);
  log('y');
  t.deepEqual(written.slice(-1), ['y']);
});
