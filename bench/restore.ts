// The restore row of the bench: `imgfs restore` of the target's dump, against reading that image
// (`cat task.img > /dev/null`, page cache warm) in the same run, and against the floors a
// restore stands on: creating as much fresh memory, by writing it or by UFFDIO_COPY as the
// restore places pages (bench/faultin.c).

import { spawn } from 'node:child_process';
import { closeSync, openSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildHelper } from './build.js';
import { cleanup } from './cleanup.js';
import { WARM_UP_RUNS, type Measure, type TargetRun } from './measures.js';
import { runOk, waitUntraced } from './procs.js';
import { median, type Row } from './report.js';

export const RESTORE = 'imgfs restore --detach task.img';
export const CAT_IMAGE = 'cat task.img > /dev/null';
export const FAULT_IN = 'fault-in floor (bench/faultin.c write)';
export const PLACE_FLOOR = 'UFFDIO_COPY floor (bench/faultin.c uffd)';

const GB = 1e9;
const imgfs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'imgfs');

interface Timed {
  bytes: number;
  seconds: number;
}

function row(run: TargetRun, name: string, detail: string, samples: Timed[]): Row {
  const rates = samples.map((s) => s.bytes / s.seconds / GB);
  return { target: run.label, name, value: median(rates), unit: 'GB/s', runs: rates, detail: `${(samples[0].bytes / GB).toFixed(3)} GB; ${detail}` };
}

/**
 * One timed restore, spawn → exit of the CLI (node start-up included). Its standard output is
 * a file: the restored process inherits it and would hold a pipe open. The restored process is
 * killed right after.
 */
async function restoreOnce(image: string, outDir: string): Promise<number> {
  const pidFile = path.join(outDir, 'restored.pid');
  const out = openSync(pidFile, 'w');
  const start = process.hrtime.bigint();
  const child = spawn(imgfs, ['restore', '--detach', image], { stdio: ['ignore', out, 'pipe'] });
  closeSync(out);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (code !== 0) throw new Error(`${RESTORE} failed (${code}): ${stderr.trim()}`);
  const pid = Number((await fsp.readFile(pidFile, 'utf8')).split('\n')[0]);
  process.kill(pid, 'SIGKILL');
  return seconds;
}

/** The issue asks for the 1 GiB target; a restore of a larger one adds minutes and no insight. */
const LARGEST_TARGET = 1 << 30;

export const restoreVsRead: Measure = async (run) => {
  if (run.target.bytes > LARGEST_TARGET) return [];
  const { outDir, reps } = run.bench;
  const image = path.join(outDir, 'task.img');
  await waitUntraced(run.target.pid);
  await runOk('cp', [run.bench.imgfs.file(run.target.pid, 'dump'), image]);
  const removal = cleanup.add(`remove ${image}`, () => fsp.rm(image, { force: true }));
  try {
    const bytes = (await fsp.stat(image)).size;
    await runOk('cat', [image]); // warms the page cache
    const reads: Timed[] = [];
    const restores: Timed[] = [];
    for (let i = 0; i < WARM_UP_RUNS; i++) await restoreOnce(image, outDir);
    for (let i = 0; i < reps.throughput; i++) {
      reads.push({ bytes, seconds: (await runOk('cat', [image])).seconds });
      restores.push({ bytes, seconds: await restoreOnce(image, outDir) });
    }
    const faultin = await buildHelper('faultin');
    const floor = async (mode: string): Promise<Timed[]> => {
      const samples: Timed[] = [];
      for (let i = -WARM_UP_RUNS; i < reps.throughput; i++) {
        const [filled, nanoseconds] = (await runOk(faultin, [String(run.target.bytes), mode], { captureStdout: true })).stdout.trim().split(' ').map(Number);
        if (i >= 0) samples.push({ bytes: filled, seconds: nanoseconds / 1e9 });
      }
      return samples;
    };
    const writes = await floor('write');
    const placements = await floor('uffd');
    return [
      row(run, CAT_IMAGE, 'image bytes; page cache warm; wall clock spawn → exit', reads),
      row(run, RESTORE, `image bytes; after ${WARM_UP_RUNS} untimed run; wall clock spawn → exit of the CLI (node start-up included) until the process runs`, restores),
      row(run, FAULT_IN, `bytes of the target's filled region; after ${WARM_UP_RUNS} untimed run; mmap + one write per page of fresh memory, self-timed`, writes),
      row(run, PLACE_FLOOR, `bytes of the target's filled region; after ${WARM_UP_RUNS} untimed run; mmap + UFFDIO_COPY in 2 MiB copies on one thread, self-timed`, placements),
    ];
  } finally {
    await removal.now();
  }
};
