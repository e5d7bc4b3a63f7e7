// `npm run bench`: imgfs against its peers (gcore, the raw process_vm_readv ceiling) on the same
// targets in one run; prints markdown for docs/performance.md. `--quick`: the 1 GiB target only,
// fewer repetitions.
//
// The plan below is the whole bench: which targets, which measures on each, which ratios and
// goals. A new file on the mount or a new operation is a line in MEASURES (and in RATIOS/GOALS).

import { promises as fsp } from 'node:fs';
import { buildHelper } from './build.js';
import { cleanUpOnExit, cleanup } from './cleanup.js';
import { startImgfs } from './imgfs.js';
import { cpuBusy, describeMachine, loadAverage, startCpuWatch } from './machine.js';
import {
  CEILING, STACK_CEILING, MEMORY_STACK_CEILING, FS_PEAK_RSS, GCORE, STACK_COPY_CEILING, catName, ceiling, cpName, diskCopies, fsPeakRss, openName, openToFirstByte,
  memoryStackCeiling, preadName, randomPread, readToNull, stackCeiling, type Bench, type Measure, type Repetitions,
} from './measures.js';
import { goalsTable, measurementsTable, ratiosTable, type Goal, type Ratio, type Row } from './report.js';
import { LIVE_CP, stoppedDuringCopy, stoppedName } from './live.js';
import { CAT_IMAGE, RESTORE, restoreVsRead } from './restore.js';
import { startFill } from './target.js';

const OUT_PARENT = '/var/tmp';
/** Busy share of all cores before the run above which the bench warns that others are using it. */
const BUSY_WARNING = 0.1;

const SMALL_MIB = 1024;
const LARGE_MIB = 4096;
const label = (mib: number) => `${mib / 1024} GiB`;

const MEASURES: Measure[] = [
  ceiling,
  stackCeiling,
  memoryStackCeiling,
  readToNull('dump'),
  readToNull('core'),
  diskCopies,
  openToFirstByte('dump'),
  randomPread('dump'),
  // After the latencies: once a --live copy (a copy-on-write fork) has been, each page of the target
  // takes a fault the next time it is pinned (process_vm_readv) or written: 45 -> 103 µs p50 for
  // the preads' pass over 4 GiB, by hand.
  stoppedDuringCopy,
  restoreVsRead,
  fsPeakRss, // last: after everything this target made the FS do
];

const RATIOS: Ratio[] = [
  { numerator: catName('dump'), denominator: CEILING },
  { numerator: catName('dump'), denominator: STACK_CEILING },
  { numerator: catName('dump'), denominator: MEMORY_STACK_CEILING },
  { numerator: cpName('dump'), denominator: GCORE },
  { numerator: cpName('core'), denominator: cpName('dump') },
  { numerator: cpName('core'), denominator: GCORE },
  // What the transport itself lets cp reach, against gcore, and how much of it the dump gets.
  { numerator: STACK_COPY_CEILING, denominator: GCORE },
  { numerator: cpName('dump'), denominator: STACK_COPY_CEILING },
  // How much of the default's stop --live is left with, and what its cp costs.
  { numerator: stoppedName(true), denominator: stoppedName(false) },
  { numerator: LIVE_CP, denominator: cpName('dump') },
  // Restore time over read time of the same image: the target is at most 2.
  { numerator: CAT_IMAGE, denominator: RESTORE },
];

function goals(labels: string[]): Goal[] {
  return [
    ...labels.map((target): Goal => ({ label: `cat dump ≥ 1.6 GB/s (${target})`, target, name: catName('dump'), compare: '>=', bound: 1.6 })),
    { label: `cp of the ${label(LARGE_MIB)} dump ≥ gcore`, target: label(LARGE_MIB), name: cpName('dump'), compare: '>=', bound: { name: GCORE } },
    ...labels.map((target): Goal => ({ label: `cp core within 10% of cp dump (${target})`, target, name: cpName('core'), compare: '>=', bound: { name: cpName('dump'), factor: 0.9 } })),
    { label: `cp of the ${label(LARGE_MIB)} core ≥ gcore`, target: label(LARGE_MIB), name: cpName('core'), compare: '>=', bound: { name: GCORE } },
    { label: `open → first byte ≤ 30 ms (${label(SMALL_MIB)})`, target: label(SMALL_MIB), name: openName('dump'), compare: '<=', bound: 30 },
    ...labels.map((target): Goal => ({ label: `p50 4 KiB pread ≤ 100 µs (${target})`, target, name: preadName('dump', 50), compare: '<=', bound: 100 })),
    { label: `restore ≤ 2× the read time of its image (${label(SMALL_MIB)})`, target: label(SMALL_MIB), name: RESTORE, compare: '>=', bound: { name: CAT_IMAGE, factor: 0.5 } },
    { label: `FS RSS ≤ 150 MiB while dumping ${label(LARGE_MIB)}`, target: label(LARGE_MIB), name: FS_PEAK_RSS, compare: '<=', bound: 150 },
  ];
}

interface Options {
  quick: boolean;
}

const USAGE = 'usage: npm run bench [-- --quick]   (--quick: the 1 GiB target only, fewer repetitions)';

function parseOptions(args: string[]): Options {
  const options: Options = { quick: false };
  for (const arg of args) {
    if (arg === '--quick') options.quick = true;
    else if (arg === '-h' || arg === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown option '${arg}'\n${USAGE}`);
  }
  return options;
}

const percent = (share: number) => `${(share * 100).toFixed(0)}%`;
const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);

async function main(options: Options): Promise<void> {
  const targetsMiB = options.quick ? [SMALL_MIB] : [SMALL_MIB, LARGE_MIB];
  const reps: Repetitions = options.quick ? { throughput: 1, opens: 3, preads: 500 } : { throughput: 3, opens: 7, preads: 2000 };
  const started = Date.now();
  const loadBefore = loadAverage();
  const busyBefore = await cpuBusy(1000);
  if (busyBefore > BUSY_WARNING) progress(`warning: ${percent(busyBefore)} of the CPU was busy before the bench started; the numbers will be low`);
  const othersShare = await startCpuWatch();

  const [fill, pvr, pread] = await Promise.all(['fill', 'pvr', 'pread'].map(buildHelper));
  const outDir = await fsp.mkdtemp(`${OUT_PARENT}/imgfs-bench-`);
  cleanup.add(`remove ${outDir}`, () => fsp.rm(outDir, { recursive: true, force: true }));
  const machine = await describeMachine(outDir);
  const imgfs = await startImgfs();
  const liveImgfs = await startImgfs(['src/cli.ts'], ['--live']);
  progress(`imgfs mounted on ${imgfs.dir} (pid ${imgfs.pid}), with --live on ${liveImgfs.dir}; writing to ${outDir}`);
  const bench: Bench = { imgfs, liveImgfs, outDir, helpers: { pvr, pread }, reps };

  const rows: Row[] = [];
  for (const mib of targetsMiB) {
    const target = await startFill(fill, mib);
    progress(`${label(mib)} target: pid ${target.pid}`);
    for (const measure of MEASURES) {
      const measured = await measure({ bench, target, label: label(mib) }).catch((err: Error) => {
        throw new Error(`${err.message}\nimgfs's log ends with:\n${imgfs.recentLog() || '(nothing)'}`);
      });
      for (const row of measured) progress(`  ${row.name}: ${row.value.toFixed(2)} ${row.unit}`);
      rows.push(...measured);
    }
    await target.stop();
  }

  const labels = targetsMiB.map(label);
  const others = await othersShare(imgfs.pid);
  process.stdout.write([
    `### \`npm run bench${options.quick ? ' -- --quick' : ''}\`, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Machine: ${machine}. Other processes kept ${percent(busyBefore)} of the CPU busy in the second before the run and used ` +
      `${percent(others)} of it during the run (kernel threads such as writeback count as other); load average (1/5/15 min) ` +
      `before: ${loadBefore}, after: ${loadAverage()}. ` +
      `Run time ${((Date.now() - started) / 1000).toFixed(0)} s.`,
    '',
    measurementsTable(rows),
    '',
    ratiosTable(rows, RATIOS, labels),
    '',
    goalsTable(rows, goals(labels)),
    '',
    'GB = 10^9 bytes. Throughput rows are the median of the runs listed. cp and gcore are timed until the command exits, without fsync: ' +
      'the written file may still be in the page cache (equally for both). cat, cp and gcore are wall clock from spawn to exit; the ceiling ' +
      'and the preads are timed inside their C helpers.',
    '',
  ].join('\n'));
}

cleanUpOnExit();
try {
  await main(parseOptions(process.argv.slice(2)));
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await cleanup.runAll();
}
