// --live: a process runs on while its snapshot is read, and the snapshot is still of one instant:
// its pages come from a copy-on-write copy of its memory, which leaves nothing behind.

import test from 'ava';
import { spawn } from 'node:child_process';
import { promises as fsp, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { openHeld, readWhole } from './helpers/files.js';
import { commOf, patternPage, readMaps, readMem, taskStatus } from './helpers/groundtruth.js';
import { loadAt, loadBytes, parseElfCore } from './helpers/elfcore.js';
import { parseImage, PAGE_SIZE } from './helpers/image.js';
import { imgfsPidsServing, mountImgfs } from './helpers/mount.js';
import { dumpToFile, killOriginal, startRestorer } from './helpers/restore.js';
import { errnoOf } from './helpers/files.js';
import { killAndReap, waitForExit } from './helpers/targets.js';
import { buildTarget } from './helpers/build.js';
import { run } from './helpers/run.js';
import { startTarget, type Target } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';

interface Writer {
  buffer: number;
  pages: number;
  generationAt: number;
  wipedAt: number;
}

const writerOf = (target: Target): Writer => ({
  buffer: parseInt(target.info[1], 16),
  pages: Number(target.info[2]),
  generationAt: parseInt(target.info[3], 16),
  wipedAt: parseInt(target.info[4], 16),
});

const generationNow = (target: Target, w: Writer) => readMem(target.pid, w.generationAt, 8).readBigUInt64LE(0);

/**
 * Every process but the target that runs the target's program (the copy, while it lives), or only
 * those traced by one of tracers: other tests of this file run the same program.
 */
function othersRunning(target: Target, tracers?: number[]): number[] {
  const binary = realpathSync(target.binary);
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
    try {
      return pid !== target.pid && readlinkSync(`/proc/${pid}/exe`) === binary && (!tracers || tracers.includes(taskStatus(pid).tracerPid));
    } catch {
      return false;
    }
  });
}

/** The children of every thread of pid, zombies included. */
const childrenOf = (pid: number) => readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
  readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').trim().split(/\s+/).filter(Boolean));

/**
 * The generations an image holds in the writer's buffer, page by page (a page the writer was in
 * the middle of holds two), and the generation word it holds.
 */
function generationsIn(image: Buffer, w: Writer): { pages: bigint[][]; generation: bigint } {
  const parsed = parseImage(image);
  const byAddress = new Map(parsed.pages.map((p) => [p.vaddr, p.offset]));
  const pages: bigint[][] = [];
  for (let i = 0; i < w.pages; i++) {
    const offset = byAddress.get(w.buffer + i * PAGE_SIZE);
    if (offset === undefined) throw new Error(`no page record for buffer page ${i}`);
    const words = new Set<bigint>();
    for (let at = 0; at < PAGE_SIZE; at += 8) words.add(image.readBigUInt64LE(offset + at));
    pages.push([...words].sort((a, b) => Number(b - a)));
  }
  const genPage = w.generationAt - (w.generationAt % PAGE_SIZE);
  const generation = image.readBigUInt64LE(byAddress.get(genPage)! + (w.generationAt - genPage));
  return { pages, generation };
}

// Serial: it counts every process of the program, and the other tests run it too.
test.serial('--live: the task runs on while its dump is open, and the dump is of one instant', async (t) => {
  const target = await startTarget(t, 'live_writer');
  const w = writerOf(target);
  await waitUntil('the writer to finish a pass', () => generationNow(target, w) > 2n);
  const mnt = await mountImgfs(t, ['--live']);
  const dump = await openHeld(t, path.join(mnt.dir, String(target.pid), 'dump'));
  const first = await readWhole(dump);

  t.is(taskStatus(target.pid).tracerPid, 0, 'not traced while its dump is open');
  const before = generationNow(target, w);
  await waitUntil('it keeps writing while its dump is open', () => generationNow(target, w) > before);

  const { pages, generation } = generationsIn(first, w);
  const newest = pages[0][0];
  t.true(newest === generation || newest === generation + 1n, `the pass in progress at the snapshot (${newest}) follows the last one done (${generation})`);
  const flat = pages.flat();
  t.true(flat.every((g) => g === newest || g === newest - 1n), `only the pass in progress and the one before it: ${[...new Set(flat)].join(', ')}`);
  const steps = flat.filter((g, i) => i > 0 && g !== flat[i - 1]).length;
  t.true(steps <= 1, 'the pass in progress ends at one page, the cursor');

  t.true((await readWhole(dump)).equals(first), 'read again, the same instant: the copy does not change');
  const core = await openHeld(t, path.join(mnt.dir, String(target.pid), 'core'));
  const coreBytes = await readWhole(core);
  await core.close();
  const load = loadAt(parseElfCore(coreBytes), w.buffer)!;
  const inCore = loadBytes(coreBytes, load).subarray(w.buffer - Number(load.vaddr), w.buffer - Number(load.vaddr) + w.pages * PAGE_SIZE);
  const inDump = Buffer.concat(parseImage(first).pages.filter((p) => p.vaddr >= w.buffer && p.vaddr < w.buffer + w.pages * PAGE_SIZE)
    .map((p) => first.subarray(p.offset, p.offset + PAGE_SIZE)));
  t.true(inCore.equals(inDump), 'the core, opened meanwhile, is the same instant');
  const copies = othersRunning(target);
  t.is(copies.length, 1, 'its copy lives while the file is open');
  t.is(commOf(copies[0]), `imgfs:${target.pid}`, 'named for what it is, not as a second instance');
  const copyCommandLine = readFileSync(`/proc/${copies[0]}/cmdline`, 'latin1');
  t.is(copyCommandLine.replace(/\0+$/, ''), `imgfs:${target.pid}`, 'its command line too (ps -f, pgrep -f, pkill -f)');
  const image = parseImage(first);
  const [argStart, argEnd] = [Number(image.mm.arg_start), Number(image.mm.arg_end)];
  t.is(copyCommandLine.length, argEnd - argStart, 'over the process\'s argument area, in place');
  const argPage = argStart - (argStart % PAGE_SIZE);
  const inImage = image.pages.find((p) => p.vaddr === argPage)!;
  t.true(first.subarray(inImage.offset, inImage.offset + PAGE_SIZE).equals(readMem(target.pid, argPage, PAGE_SIZE)),
    'the dump has the process\'s own arguments there, kept at the snapshot');
  t.is(readFileSync(`/proc/${target.pid}/cmdline`, 'latin1').split('\0')[0], target.binary, 'the process keeps its own');
  t.deepEqual(readdirSync(`/proc/${copies[0]}/fd`), [], 'holding no descriptor of the task');
  t.deepEqual(readMaps(copies[0]).map((m) => m.start), readMaps(target.pid).map((m) => m.start), 'no mapping of its own left');
  await dump.close();
  await waitUntil('the copy to be gone', () => othersRunning(target).length === 0);
  t.deepEqual(childrenOf(target.pid), [], 'no child left in the task, not even a zombie');
  t.is(taskStatus(target.pid).tracerPid, 0);
});

test('--live: memory a fork does not copy (MADV_WIPEONFORK, MADV_DONTFORK) is kept aside: the task runs on, the dump has its bytes', async (t) => {
  const target = await startTarget(t, 'live_writer', ['wipe']);
  const w = writerOf(target);
  const unforkedAt = parseInt(target.info[5], 16);
  const mnt = await mountImgfs(t, ['--live']);
  const dump = await openHeld(t, path.join(mnt.dir, String(target.pid), 'dump'));
  const image = await readWhole(dump);
  t.is(taskStatus(target.pid).tracerPid, 0, 'not traced while its dump is open');
  const pages = parseImage(image).pages;
  for (const [at, fill] of [[w.wipedAt, 0x5a], [unforkedAt, 0xa5]]) {
    const record = pages.find((p) => p.vaddr === at);
    t.truthy(record, `the page at ${at.toString(16)} is dumped`);
    t.true(image.subarray(record!.offset, record!.offset + PAGE_SIZE).every((b) => b === fill), `with its bytes (0x${fill.toString(16)}), not zeros`);
  }
  const core = await openHeld(t, path.join(mnt.dir, String(target.pid), 'core'));
  const coreBytes = await readWhole(core);
  await core.close();
  const load = loadAt(parseElfCore(coreBytes), unforkedAt)!;
  t.true(loadBytes(coreBytes, load).subarray(unforkedAt - Number(load.vaddr), unforkedAt - Number(load.vaddr) + PAGE_SIZE).every((b) => b === 0xa5), 'the core has them too');
  t.notRegex(mnt.stderr(), /held frozen/);
  await dump.close();
});

test('--live: more memory a fork does not copy than is kept aside (65 MiB of MADV_DONTFORK): the task is held frozen instead, saying why', async (t) => {
  const target = await startTarget(t, 'live_writer', ['dontfork-big']);
  const mnt = await mountImgfs(t, ['--live']);
  const dump = await openHeld(t, path.join(mnt.dir, String(target.pid), 'dump'));
  await dump.read(Buffer.alloc(1), 0, 1, 0);
  t.not(taskStatus(target.pid).tracerPid, 0, 'frozen while its dump is open');
  const logged = /held frozen .*65 MiB of its memory is not copied by a fork/;
  t.regex(await mnt.stderrOnceMatching(logged), logged);
  t.deepEqual(othersRunning(target, await imgfsPidsServing(mnt.dir)), [], 'no copy made');
  await dump.close();
  await waitUntil('imgfs to let the task go', () => taskStatus(target.pid).tracerPid === 0);
});

test('--live: a process that reaps orphans itself (a subreaper) is held frozen instead, and left without a child', async (t) => {
  const target = await startTarget(t, 'live_writer', ['subreaper']);
  const mnt = await mountImgfs(t, ['--live']);
  const dump = await openHeld(t, path.join(mnt.dir, String(target.pid), 'dump'));
  await readWhole(dump);
  t.not(taskStatus(target.pid).tracerPid, 0, 'frozen while its dump is open');
  const logged = /held frozen .*reaps orphans/;
  t.regex(await mnt.stderrOnceMatching(logged), logged);
  t.deepEqual(childrenOf(target.pid), [], 'its copy, made and ended, left no zombie');
  await dump.close();
  await waitUntil('imgfs to let the task go', () => taskStatus(target.pid).tracerPid === 0);
  const w = writerOf(target);
  const before = generationNow(target, w);
  await waitUntil('the task to write on', () => generationNow(target, w) > before);
});

test('--live: an image read while the task ran on restores, and goes on from the dumped generation', async (t) => {
  const target = await startTarget(t, 'live_writer');
  const w = writerOf(target);
  await waitUntil('the writer to finish a pass', () => generationNow(target, w) > 2n);
  const image = await dumpToFile(t, target, undefined, ['--live']);
  await killOriginal(target);
  const { generation } = generationsIn(await fsp.readFile(image), w);
  const restorer = startRestorer(t, ['--detach', image]);
  const pid = await restorer.restoredPid();
  const restoredGeneration = () => readMem(pid, w.generationAt, 8).readBigUInt64LE(0);
  await waitUntil('the restored writer to finish passes', () => restoredGeneration() > generation + 2n);
  t.true(restoredGeneration() > generation);
});

test.serial('--live: imgfs killed with SIGKILL while a dump is open: its copy ends by itself, the task runs on untraced', async (t) => {
  const target = await startTarget(t, 'live_writer');
  const w = writerOf(target);
  const mnt = await mountImgfs(t, ['--live']);
  const dump = await openHeld(t, path.join(mnt.dir, String(target.pid), 'dump'));
  await readWhole(dump);
  t.is(othersRunning(target).length, 1, 'its copy lives while the file is open');

  mnt.proc.kill('SIGKILL');
  await waitForExit(mnt.proc);
  await waitUntil('the copy to end', () => othersRunning(target).length === 0);
  t.is(taskStatus(target.pid).tracerPid, 0);
  const before = generationNow(target, w);
  await waitUntil('the task to write on', () => generationNow(target, w) > before);
  t.deepEqual(childrenOf(target.pid), [], 'no child left in the task');
  t.true(['ENOTCONN', 'ECONNABORTED'].includes((await errnoOf(dump.read(Buffer.alloc(1), 0, 1, 0)))!), 'the dead mount is stale until cleaned');
});

test.serial('--live: a task that exits while its dump is open: the snapshot, held by the copy, is still read in full', async (t) => {
  const target = await startTarget(t, 'live_writer');
  const w = writerOf(target);
  const mnt = await mountImgfs(t, ['--live']);
  const dump = await openHeld(t, path.join(mnt.dir, String(target.pid), 'dump'));
  const head = Buffer.alloc(PAGE_SIZE);
  await dump.read(head, 0, PAGE_SIZE, 0);
  await killOriginal(target);
  const image = await readWhole(dump);
  t.true(head.equals(image.subarray(0, PAGE_SIZE)));
  t.is(generationsIn(image, w).pages.length, w.pages, 'every page of the buffer');
  await dump.close();
  await waitUntil('the copy to be gone', () => othersRunning(target).length === 0);
});

test.serial('--live: reading the copy leaves its pages shared with the task (no page is copied for a read)', async (t) => {
  const target = await startTarget(t, 'pattern', ['32']);
  const [region, bytes] = [parseInt(target.info[1], 16), Number(target.info[2])];
  const mnt = await mountImgfs(t, ['--live']);
  const dump = await openHeld(t, path.join(mnt.dir, String(target.pid), 'dump'));
  const image = await readWhole(dump);
  const pages = parseImage(image).pages.filter((p) => p.vaddr >= region && p.vaddr < region + bytes);
  t.is(pages.length, bytes / PAGE_SIZE);
  t.true(pages.every((p) => image.subarray(p.offset, p.offset + PAGE_SIZE).equals(patternPage(p.vaddr))), 'the pattern, page by page');
  // Other test files run this program too: the copy is the one named for the target.
  const copyOf = () => othersRunning(target).filter((pid) => commOf(pid) === `imgfs:${target.pid}`);
  const [copy] = copyOf();
  const rollup = readFileSync(`/proc/${copy}/smaps_rollup`, 'latin1');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)![1]);
  // process_vm_readv pins what it reads, and the kernel copies a shared anonymous page it pins.
  t.true(kib('Private_Clean') + kib('Private_Dirty') < bytes / 1024 / 4, `the copy owns ${kib('Private_Clean') + kib('Private_Dirty')} KiB alone after the read`);
  await dump.close();
  await waitUntil('the copy to be gone', () => copyOf().length === 0);
});

test('--live: the copy of a process with a command line shorter than its name is named in full, in ps -f and pgrep -f too', async (t) => {
  const binary = await buildTarget('counter');
  // A two-byte command line ("c"): the copy's name runs on into the environment that follows it.
  const counter = spawn(binary, [], { argv0: 'c', stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => killAndReap(counter));
  await new Promise((resolve) => counter.stdout!.once('data', resolve));
  t.is(readFileSync(`/proc/${counter.pid}/cmdline`, 'latin1'), 'c\0');
  const mnt = await mountImgfs(t, ['--live']);
  const dump = await openHeld(t, path.join(mnt.dir, String(counter.pid), 'dump'));
  const bytes = await readWhole(dump);
  // Other tests run the counter too: the copy is the one this mount holds.
  const copies = othersRunning({ pid: counter.pid!, binary } as Target, await imgfsPidsServing(mnt.dir));
  t.is(copies.length, 1);
  const name = `imgfs:${counter.pid}`;
  t.is(readFileSync(`/proc/${copies[0]}/cmdline`, 'latin1').replace(/\0+$/, ''), name);
  const pgrep = await run('pgrep', ['-f', `^${name}$`]);
  t.deepEqual(pgrep.stdout.trim().split('\n'), [String(copies[0])], 'pgrep -f finds it by its whole name');
  const image = parseImage(bytes);
  const [argStart, envEnd] = [Number(image.mm.arg_start), Number(image.mm.env_end)];
  for (let page = argStart - (argStart % PAGE_SIZE); page < envEnd; page += PAGE_SIZE) {
    const inImage = image.pages.find((p) => p.vaddr === page)!;
    t.true(bytes.subarray(inImage.offset, inImage.offset + PAGE_SIZE).equals(readMem(counter.pid!, page, PAGE_SIZE)),
      `the dump has the process's own arguments and environment at 0x${page.toString(16)}`);
  }
  t.is(readFileSync(`/proc/${counter.pid}/cmdline`, 'latin1'), 'c\0', 'the process keeps its own');
});
