// A test file's tests all start at once in its ava worker. Where each starts a target, a dump and a
// restorer, twenty of them share two cores, and every wait in them stretches past its time-out
// (CI saw a restorer print nothing in 20 s). Such a file runs its tests a few at a time instead.

import test, { type ExecutionContext } from 'ava';

type Implementation = (t: ExecutionContext) => Promise<void>;

/** A `test` that runs at most `limit` of the tests declared with it at once. */
export function testAtMostAtOnce(limit: number): (title: string, implementation: Implementation) => void {
  let running = 0;
  const waiting: (() => void)[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
  return (title, implementation) => test(title, async (t) => {
    if (running < limit) running++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      await implementation(t);
    } finally {
      release();
    }
  });
}
