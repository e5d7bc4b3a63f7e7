// --live against the default: how long `cp` of a dump keeps the target stopped, on the bench's
// mount and on a second one mounted with --live, and how fast that cp copies.

import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Imgfs } from './imgfs.js';
import { WARM_UP_RUNS, type Measure, type TargetRun } from './measures.js';
import { runOk, waitUntraced } from './procs.js';
import { median, type Row } from './report.js';

export const stoppedName = (live: boolean) => `target stopped during cp dump${live ? ' (--live)' : ''}`;
export const LIVE_CP = 'cp dump <file> (--live)';

const GB = 1e9;
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

/** cp of the dump on one mount, repeated: the stopped time's row and the cp's rate. */
async function copyWatched(run: TargetRun, mount: Imgfs, live: boolean): Promise<{ stopped: Row; rates: number[]; bytes: number }> {
  const source = mount.file(run.target.pid, 'dump');
  const copy = path.join(run.bench.outDir, `live.${run.target.pid}`);
  const stopped: number[] = [];
  const rates: number[] = [];
  let bytes = 0;
  for (let i = -WARM_UP_RUNS; i < run.bench.reps.throughput; i++) {
    await waitUntraced(run.target.pid);
    await runOk('sync', []);
    const { result, tracedMs } = await tracedDuring(run.target.pid, () => runOk('cp', [source, copy]));
    bytes = (await fsp.stat(copy)).size;
    await fsp.rm(copy);
    if (i < 0) continue;
    stopped.push(tracedMs);
    rates.push(bytes / result.seconds / GB);
  }
  const detail = `${live ? 'a second mount, with --live; ' : ''}time the target was traced (TracerPid, looked at every ${POLL_MS} ms) while cp copied its dump; after ${WARM_UP_RUNS} untimed run`;
  return { stopped: { target: run.label, name: stoppedName(live), value: median(stopped), unit: 'ms', runs: stopped, detail }, rates, bytes };
}

/** The target stopped during cp of its dump, default and --live; the --live cp's rate. */
export const stoppedDuringCopy: Measure = async (run) => {
  const frozen = await copyWatched(run, run.bench.imgfs, false);
  const live = await copyWatched(run, run.bench.liveImgfs, true);
  return [frozen.stopped, live.stopped, {
    target: run.label, name: LIVE_CP, value: median(live.rates), unit: 'GB/s', runs: live.rates,
    detail: `${(live.bytes / GB).toFixed(3)} GB; the same runs; wall clock spawn → exit, no fsync`,
  }];
};
