// What the bench measures on one target. Each measure runs its repetitions and returns rows;
// the plan in run.ts lists which measures run, so a new file (core) or a new operation (restore)
// is one more entry there.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { startImgfs, type Imgfs } from './imgfs.js';
import { procStatusField, runOk, waitUntraced } from './procs.js';
import { median, percentile, type Row } from './report.js';
import type { Target } from './target.js';

export interface Repetitions {
  /** Runs of each throughput measurement (cat, cp, gcore, ceiling); the median is reported. */
  throughput: number;
  /** open → first byte samples; the median is reported. */
  opens: number;
  /** 4 KiB preads at random offsets. */
  preads: number;
}

/** What every target's measures share. */
export interface Bench {
  imgfs: Imgfs;
  /** A second mount of imgfs, with --live. */
  liveImgfs: Imgfs;
  /** Where cp and gcore write (same file system for both), emptied after each run. */
  outDir: string;
  helpers: { pvr: string; pread: string };
  reps: Repetitions;
}

export interface TargetRun {
  bench: Bench;
  target: Target;
  /** How the table names the target, e.g. '1 GiB'. */
  label: string;
}

export type Measure = (run: TargetRun) => Promise<Row[]>;

// The names the ratios and goals in run.ts refer to.
export const CEILING = 'process_vm_readv ceiling';
export const STACK_CEILING = 'cat pattern-only FUSE file > /dev/null';
export const MEMORY_STACK_CEILING = 'cat process_vm_readv-only FUSE file > /dev/null';
export const GCORE = 'gcore -o <file> <pid>';
export const STACK_COPY_CEILING = 'cp pattern-only FUSE file <file>';
export const catName = (file: string) => `cat ${file} > /dev/null`;
export const cpName = (file: string) => `cp ${file} <file>`;
export const openName = (file: string) => `open ${file} → first byte`;
export const preadName = (file: string, p: number) => `4 KiB pread of ${file}, p${p}`;
export const FS_PEAK_RSS = 'FS process peak RSS (VmHWM)';

const GB = 1e9;
const MiB = 1 << 20;
const gdbEnv = { ...process.env, DEBUGINFOD_URLS: '' };

/**
 * Whatever fills gigabytes of memory it did not touch a moment ago (a write to the page cache, a
 * restore) runs much slower the first time after a pause on this VM: the host takes back memory
 * the guest freed and faults it in again on the next use (a 1 GiB cp of a cached file: 0.74-0.80
 * GB/s first, 2.1-2.2 after, in a fresh directory each time). So every such measure runs once
 * untimed before its timed runs, and none inherits warm memory from the measure before it.
 */
export const WARM_UP_RUNS = 1;

/** A timed transfer of `bytes` in `seconds`, as one row of the table names it. */
export interface Transfer {
  name: string;
  detail: string;
  once: () => Promise<{ bytes: number; seconds: number }>;
}

/** Repeats one timed transfer; reports the median rate in GB/s. warmUp: see WARM_UP_RUNS. */
export async function throughput(run: TargetRun, name: string, detail: string, once: Transfer['once'], warmUp = false): Promise<Row> {
  return (await inTurns(run, [{ name, detail, once }], warmUp))[0];
}

/**
 * Repeats transfers in turns, one run of each per round, each round starting with the next one,
 * so that whatever drifts during the rounds (writeback, the host's memory) weighs on every
 * transfer alike; one row each, with its median rate in GB/s. The target must be running (not
 * held by imgfs) before every run. warmUp: see WARM_UP_RUNS.
 */
export async function inTurns(run: TargetRun, transfers: readonly Transfer[], warmUp = false): Promise<Row[]> {
  const rates = transfers.map((): number[] => []);
  const bytes = transfers.map(() => 0);
  for (let round = warmUp ? -WARM_UP_RUNS : 0; round < run.bench.reps.throughput; round++) {
    for (let k = 0; k < transfers.length; k++) {
      const i = (Math.max(round, 0) + k) % transfers.length;
      await waitUntraced(run.target.pid);
      const result = await transfers[i].once();
      bytes[i] = result.bytes;
      if (round >= 0) rates[i].push(result.bytes / result.seconds / GB);
    }
  }
  const warmed = warmUp ? `after ${WARM_UP_RUNS} untimed run; ` : '';
  const turns = transfers.length > 1 ? `in turns with ${transfers.length - 1} others; ` : '';
  return transfers.map(({ name, detail }, i) => ({
    target: run.label, name, value: median(rates[i]), unit: 'GB/s' as const, runs: rates[i], detail: `${(bytes[i] / GB).toFixed(3)} GB; ${warmed}${turns}${detail}`,
  }));
}

/** Writers to disk start with nothing in flight from the previous run. */
const sync = () => runOk('sync', []);

async function fileSize(file: string): Promise<number> {
  return (await fsp.stat(file)).size;
}

/** The raw ceiling: bench/pvr.c reads the filled region, self-timed (no process start-up). */
export const ceiling: Measure = async (run) => {
  const { pid, address, bytes } = run.target;
  return [await throughput(run, CEILING, 'C helper, 1 MiB batches to /dev/null, filled region only, self-timed', async () => {
    const { stdout } = await runOk(run.bench.helpers.pvr, [String(pid), address.toString(16), String(bytes)], { captureStdout: true });
    const [read, nanoseconds] = stdout.trim().split(' ').map(Number);
    return { bytes: read, seconds: nanoseconds / 1e9 };
  })];
};

/** What src/fs.ts over fuse-native serves when producing bytes costs nothing (bench/patternfs.ts). */
export const stackCeiling: Measure = (run) => catPatternFs(run, STACK_CEILING, 'read handler copies a pattern', []);

/**
 * What src/fs.ts over fuse-native serves when each request is one process_vm_readv of the
 * target's filled region (bench/patternfs.ts), made while the request waits: a FUSE view of
 * process memory without read-ahead.
 */
export const memoryStackCeiling: Measure = (run) => catPatternFs(run, MEMORY_STACK_CEILING,
  'read handler is one process_vm_readv of the filled region', [String(run.target.pid), run.target.address.toString(16)]);

/** bench/patternfs.ts mounted for the target's size: its one file's path. */
async function patternFile(run: TargetRun, source: string[] = []): Promise<string> {
  const patternFs = await startImgfs(['bench/patternfs.ts', String(run.target.bytes), ...source]);
  return path.join(patternFs.dir, 'pattern');
}

async function catPatternFs(run: TargetRun, name: string, handler: string, source: string[]): Promise<Row[]> {
  const file = await patternFile(run, source);
  return [await throughput(run, name, `same src/fs.ts and options, ${handler}; wall clock`, async () => {
    const { seconds } = await runOk('cat', [file]);
    return { bytes: run.target.bytes, seconds };
  })];
}

/** `cat <mnt>/<pid>/<file> > /dev/null`: the image's own bytes, no disk. */
export const readToNull = (file: string): Measure => async (run) => {
  const source = run.bench.imgfs.file(run.target.pid, file);
  return [await throughput(run, catName(file), 'wall clock spawn → exit, includes the freeze', async () => {
    const bytes = await fileSize(source);
    const { seconds } = await runOk('cat', [source]);
    return { bytes, seconds };
  })];
};

/** One `cp` of source to copy, `sync` first (untimed); the copy is removed after. */
export async function copyOnce(source: string, copy: string): Promise<{ bytes: number; seconds: number }> {
  await sync();
  const { seconds } = await runOk('cp', [source, copy]);
  const bytes = await fileSize(copy);
  await fsp.rm(copy);
  return { bytes, seconds };
}

/** `cp <mnt>/<pid>/<file> <outDir>/...`: the image written to disk (no fsync). */
function copyToDisk(run: TargetRun, file: string): Transfer {
  const source = run.bench.imgfs.file(run.target.pid, file);
  const copy = path.join(run.bench.outDir, `${file}.${run.target.pid}`);
  return { name: cpName(file), detail: 'wall clock spawn → exit, no fsync', once: () => copyOnce(source, copy) };
}

/** The peer: gdb's gcore on the same target, writing to the same file system. */
function gcore(run: TargetRun): Transfer {
  const prefix = path.join(run.bench.outDir, 'core');
  const core = `${prefix}.${run.target.pid}`;
  return {
    name: GCORE, detail: 'core bytes; wall clock spawn → exit (gdb start-up, attach, write), no fsync',
    once: async () => {
      await sync();
      const { seconds } = await runOk('gcore', ['-o', prefix, String(run.target.pid)], { env: gdbEnv });
      const bytes = await fileSize(core);
      await fsp.rm(core);
      return { bytes, seconds };
    },
  };
}

/**
 * cp's ceiling on this stack: `cp` of the pattern-only file (bench/patternfs.ts) to disk, where
 * producing bytes costs nothing and only the transport and cp's writes are left.
 */
async function copyStackCeiling(run: TargetRun): Promise<Transfer> {
  const source = await patternFile(run);
  const copy = path.join(run.bench.outDir, 'pattern');
  return { name: STACK_COPY_CEILING, detail: 'same src/fs.ts and options, read handler copies a pattern; wall clock spawn → exit, no fsync', once: () => copyOnce(source, copy) };
}

/** The dump and the core written to disk by cp, gcore's core and cp's ceiling beside them, in turns. */
export const diskCopies: Measure = async (run) => inTurns(run, [copyToDisk(run, 'dump'), copyToDisk(run, 'core'), gcore(run), await copyStackCeiling(run)], true);

/** open() → first byte, from this (bench) process: the FS is another process, so the async open
 *  cannot deadlock. Each sample is a fresh freeze and snapshot. */
export const openToFirstByte = (file: string): Measure => async (run) => {
  const source = run.bench.imgfs.file(run.target.pid, file);
  const samples: number[] = [];
  await sync(); // what the copies before left dirty is written back now, not during the samples
  for (let i = 0; i < run.bench.reps.opens; i++) {
    await waitUntraced(run.target.pid);
    const start = process.hrtime.bigint();
    const handle = await fsp.open(source, 'r');
    try {
      const { bytesRead } = await handle.read(Buffer.alloc(1), 0, 1, 0);
      samples.push(Number(process.hrtime.bigint() - start) / 1e6);
      if (bytesRead !== 1) throw new Error(`reading the first byte of ${source} returned ${bytesRead} bytes`);
    } finally {
      await handle.close();
    }
  }
  return [{ target: run.label, name: openName(file), value: median(samples), unit: 'ms', runs: samples, detail: `median of ${samples.length}; fs.promises open + 1-byte read, each a fresh freeze` }];
};

/** 4 KiB preads at random offsets of one open dump, timed one by one inside bench/pread.c. */
export const randomPread = (file: string): Measure => async (run) => {
  const source = run.bench.imgfs.file(run.target.pid, file);
  await sync(); // as for the opens
  await waitUntraced(run.target.pid);
  const { stdout } = await runOk(run.bench.helpers.pread, [source, String(run.bench.reps.preads)], { captureStdout: true });
  const micros = stdout.trim().split('\n').map((ns) => Number(ns) / 1000);
  const detail = `${micros.length} preads in C (bench/pread.c), one open file`;
  return [50, 99].map((p) => ({ target: run.label, name: preadName(file, p), value: percentile(micros, p), unit: 'µs' as const, runs: [], detail }));
};

/** The FS process's peak resident set so far (VmHWM only grows: after the largest target it is
 *  the peak of the whole run). */
export const fsPeakRss: Measure = async (run) => {
  const kib = (field: string) => procStatusField(run.bench.imgfs.pid, field).then((value) => parseInt(value, 10) * 1024);
  const [peak, now] = await Promise.all([kib('VmHWM'), kib('VmRSS')]);
  return [{ target: run.label, name: FS_PEAK_RSS, value: peak / MiB, unit: 'MiB', runs: [], detail: `peak since mount, after this target's runs; VmRSS now ${(now / MiB).toFixed(0)} MiB` }];
};
