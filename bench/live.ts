// --live against the default: how long `cp` of a dump keeps the target stopped, on the bench's
// mount and on a second one mounted with --live, and how fast that cp copies.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { copyOnce, throughput, WARM_UP_RUNS, type Measure } from './measures.js';
import { median, type Row } from './report.js';

export const stoppedName = (live: boolean) => `target stopped during cp dump${live ? ' (--live)' : ''}`;
export const LIVE_CP = 'cp dump <file> (--live)';

/** How often the target's TracerPid is looked at: the resolution of the stopped time. */
const POLL_MS = 2;

/**
 * Runs work while looking at pid's TracerPid every POLL_MS: the milliseconds during which it was
 * traced (held by imgfs: stopped), to within a poll.
 */
async function tracedDuring<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; tracedMs: number }> {
  let tracedMs = 0;
  let last = performance.now();
  const look = () => {
    const now = performance.now();
    if (!/^TracerPid:\s+0$/m.test(readFileSync(`/proc/${pid}/status`, 'latin1'))) tracedMs += now - last;
    last = now;
  };
  const timer = setInterval(look, POLL_MS);
  try {
    const result = await work();
    look();
    return { result, tracedMs };
  } finally {
    clearInterval(timer);
  }
}

/**
 * The target stopped during cp of its dump, on the bench's mount and on the --live one (the cp
 * runs of throughput, each watched); the --live cp's rate.
 */
export const stoppedDuringCopy: Measure = async (run) => {
  const rows: Row[] = [];
  for (const [mount, live] of [[run.bench.imgfs, false], [run.bench.liveImgfs, true]] as const) {
    const source = mount.file(run.target.pid, 'dump');
    const copy = path.join(run.bench.outDir, `live.${run.target.pid}`);
    const stopped: number[] = [];
    const rate = await throughput(run, LIVE_CP, 'the same runs; wall clock spawn → exit, no fsync', async () => {
      const { result, tracedMs } = await tracedDuring(run.target.pid, () => copyOnce(source, copy));
      stopped.push(tracedMs);
      return result;
    }, true);
    const timed = stopped.slice(WARM_UP_RUNS);
    const detail = `${live ? 'a second mount, with --live; ' : ''}time the target was traced (TracerPid, looked at every ${POLL_MS} ms) while cp copied its dump; after ${WARM_UP_RUNS} untimed run`;
    rows.push({ target: run.label, name: stoppedName(live), value: median(timed), unit: 'ms', runs: timed, detail });
    if (live) rows.push(rate);
  }
  return rows;
};
