// Integration tests of <mnt>/<pid>/dump: a real imgfs mount, real target processes, and ground
// truth read independently from /proc while the dump holds the target frozen.
// Targets are started before the mount so that teardown (last registered runs first) stops the
// FS, which lets every task go, before it kills and reaps the targets.

import test from 'ava';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { errnoOf, makeTempDir, openHeld, readFileAsync, readWhole } from './helpers/files.js';
import { prng } from './helpers/prng.js';
import {
  patternPage, procFileOwner, procStatFields, procSyscall, readMaps, readMem, residentPages, taskStatus, threadStatuses, type TaskStatus,
} from './helpers/groundtruth.js';
import {
  HEADER_SIZE, imageSize, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, MM_OFFSET, PAGE_RECORD_SIZE, PAGE_SIZE, parseImage,
  PROT_READ, PROT_WRITE, REGS_OFFSET, VMA_RECORD_SIZE, VMAS_OFFSET,
} from './helpers/image.js';
import { decodeExtension } from '../src/extension.js';
import { loadAt, loadBytes, parseElfCore } from './helpers/elfcore.js';
import { mountEntry, mountImgfs } from './helpers/mount.js';
import { numbersOf } from './helpers/restore.js';
import { runOk } from './helpers/run.js';
import { startTarget, type Target } from './helpers/targets.js';
import { assertImageMatchesProcess, assertPagesEqualMemory, assertVmasMatch } from './helpers/verify.js';
import { sleep, waitUntil } from './helpers/wait.js';

const hex = (n: number) => `0x${n.toString(16)}`;
const dumpOf = (mnt: string, pid: number) => path.join(mnt, String(pid), 'dump');

const isFrozen = (status: TaskStatus) => status.state === 't' && status.tracerPid !== 0;
const isReleased = (status: TaskStatus) => status.state !== 't' && status.tracerPid === 0;

function counterValue(target: Target): bigint {
  return readMem(target.pid, parseInt(target.info[1], 16), 8).readBigUInt64LE(0);
}

test('harness: the pattern target holds its pattern, per /proc/<pid>/mem and pagemap', async (t) => {
  const target = await startTarget(t, 'pattern', ['4']);
  const region = parseInt(target.info[1], 16);
  const bytes = Number(target.info[2]);
  t.deepEqual(residentPages(target.pid, region, region + bytes).length, bytes / PAGE_SIZE);
  for (const vaddr of [region, region + bytes / 2, region + bytes - PAGE_SIZE]) {
    t.true(readMem(target.pid, vaddr, PAGE_SIZE).equals(patternPage(vaddr)), `pattern at ${hex(vaddr)}`);
  }
  t.truthy(readMaps(target.pid).find((entry) => entry.start <= region && region + bytes <= entry.end));
});

test.serial('the root lists thread-group leaders, not thread ids', async (t) => {
  const target = await startTarget(t, 'threads');
  const tids = target.info.slice(1);
  const mnt = await mountImgfs(t);
  t.is((await mountEntry(mnt.dir))?.type, 'fuse.imgfs');
  const entries = await fsp.readdir(mnt.dir);
  t.true(entries.includes(String(target.pid)), `pid ${target.pid} listed`);
  t.true(entries.includes(String(process.pid)), 'the test process listed');
  for (const tid of tids) t.false(entries.includes(tid), `thread ${tid} not listed`);
  t.true((await fsp.readdir(path.join(mnt.dir, String(target.pid)))).includes('dump'));
  for (const dir of [mnt.dir, path.join(mnt.dir, String(target.pid))]) {
    const listed = (await runOk('ls', ['-a1', dir])).stdout.split('\n');
    t.true(listed.includes('.') && listed.includes('..'), `ls -a ${dir} lists . and ..`);
  }
});

test.serial('dump is a 0400 file owned like /proc/<pid>, its size the bytes a read yields', async (t) => {
  const target = await startTarget(t, 'pattern', ['8']);
  const mnt = await mountImgfs(t);
  const file = dumpOf(mnt.dir, target.pid);
  const before = await fsp.stat(file);
  t.true(before.isFile());
  t.is(before.mode & 0o7777, 0o400);
  t.deepEqual({ uid: before.uid, gid: before.gid }, procFileOwner(target.pid));

  const handle = await openHeld(t, file);
  const opened = await handle.stat();
  const bytes = await readWhole(handle);
  t.is(opened.size, bytes.length, 'fstat size of the open dump');
  t.is((await fsp.stat(file)).size, bytes.length, 'stat size while open');
  t.is(before.size, bytes.length, 'stat size before open (the target did not change)');
  const image = parseImage(bytes);
  t.is(bytes.length, imageSize(image.vmas.length, image.pages.length) + (image.extension?.length ?? 0));
});

test.serial('header, registers, mm, VMAs and pages match /proc while the dump is open', async (t) => {
  const target = await startTarget(t, 'pattern', ['16']);
  const region = parseInt(target.info[1], 16);
  const regionBytes = Number(target.info[2]);
  const mnt = await mountImgfs(t);
  const handle = await openHeld(t, dumpOf(mnt.dir, target.pid));
  const bytes = await readWhole(handle);
  const image = parseImage(bytes);

  // All of this is read while the dump is open, i.e. while the target is frozen.
  t.true(threadStatuses(target.pid).every(isFrozen), 'frozen while the dump is open');
  assertImageMatchesProcess(t, image, bytes, target.pid);

  const syscall = procSyscall(target.pid);
  t.truthy(syscall, `/proc/${target.pid}/syscall of the frozen target`);
  t.is(image.regs.sp, syscall!.sp, 'rsp');
  // The image holds the registers of the stop: in an interrupted syscall, rax = -ERESTART* and
  // rip just past the syscall instruction. A dumper may already have rewound the live registers
  // for the restart (rip - 2), as the kernel does when the stop ends; both name the same state.
  const restarting = [-512n, -513n, -514n, -516n].includes(BigInt.asIntN(64, image.regs.ax));
  t.true(image.regs.ip === syscall!.pc || (restarting && image.regs.ip - 2n === syscall!.pc),
    `rip ${hex(Number(image.regs.ip))} vs pc ${hex(Number(syscall!.pc))} in /proc/${target.pid}/syscall`);
  if (syscall!.nr >= 0) t.is(image.regs.orig_ax, BigInt(syscall!.nr), 'orig_rax is the syscall the target sleeps in');
  t.is(image.regs.cs, 3, 'cs: __USER_CS encodes as CKPT_X86_SEG_USER64_CS');
  t.is(image.regs.ss, 4, 'ss: __USER_DS encodes as CKPT_X86_SEG_USER64_DS');
  t.is(image.regs.fsindex, 0);
  t.is(image.regs.gsindex, 0);
  t.is(image.regs.ds, 0);
  t.is(image.regs.es, 0);
  t.deepEqual(image.regs.tls, [0n, 0n, 0n], 'a 64-bit glibc process uses no GDT TLS entries');
  const maps = readMaps(target.pid);
  const fsBase = Number(image.regs.fs);
  t.truthy(maps.find((entry) => entry.perms.startsWith('rw') && entry.start <= fsBase && fsBase < entry.end),
    `fs base ${hex(fsBase)} (glibc's TCB) lies in a writable VMA`);
  const inVma = (addr: bigint, perms: RegExp) =>
    maps.some((entry) => perms.test(entry.perms) && BigInt(entry.start) <= addr && addr < BigInt(entry.end));
  t.true(inVma(image.regs.ip, /^..x/), 'rip in an executable VMA');
  t.true(maps.some((entry) => entry.name === '[stack]' && BigInt(entry.start) <= image.regs.sp && image.regs.sp < BigInt(entry.end)),
    'rsp in [stack]');

  const stat = procStatFields(target.pid).map((field) => (/^\d+$/.test(field) ? BigInt(field) : 0n));
  t.like(image.mm, {
    start_code: stat[26], end_code: stat[27], start_stack: stat[28], start_data: stat[45], end_data: stat[46],
    start_brk: stat[47], arg_start: stat[48], arg_end: stat[49], env_start: stat[50], env_end: stat[51], exe_fd: 0,
  });
  t.is(image.mm.brk, BigInt(parseInt(target.info[3], 16)), 'brk is the exact current break (the target set it off a page boundary)');

  const patternRecords = image.pages.filter((page) => page.vaddr >= region && page.vaddr < region + regionBytes);
  t.is(patternRecords.length, regionBytes / PAGE_SIZE, 'every page of the pattern region is dumped');
  const wrong = patternRecords.filter((page) => !bytes.subarray(page.offset, page.offset + PAGE_SIZE).equals(patternPage(page.vaddr)));
  t.deepEqual(wrong.map((page) => hex(page.vaddr)).slice(0, 5), [], 'pattern pages hold the pattern');
});

test.serial('the sparse target (64 GiB reserved, a few pages touched) dumps only what it touched', async (t) => {
  const target = await startTarget(t, 'sparse');
  const base = parseInt(target.info[1], 16);
  const reserved = Number(target.info[2]);
  const touched = target.info[3].split(',').map((offset) => base + parseInt(offset, 16));
  const mnt = await mountImgfs(t);
  const file = dumpOf(mnt.dir, target.pid);
  const handle = await openHeld(t, file);
  const size = (await handle.stat()).size;
  t.true(size < 16 << 20, `the dump of a 64 GiB reservation is small (${size} bytes)`);
  const bytes = await readWhole(handle);
  t.is(bytes.length, size);
  const image = parseImage(bytes);

  const vma = image.vmas.find((record) => record.start <= base && base < record.end);
  t.truthy(vma, 'the reservation is a VMA');
  t.true(vma!.start <= base && base + reserved <= vma!.end);
  t.is(vma!.flags, MAP_PRIVATE | MAP_ANONYMOUS);
  t.is(vma!.prot, PROT_READ | PROT_WRITE);
  const inReservation = image.pages.filter((page) => page.vaddr >= base && page.vaddr < base + reserved);
  t.deepEqual(inReservation.map((page) => hex(page.vaddr)), touched.map(hex));
  inReservation.forEach((page, i) => {
    t.true(bytes.subarray(page.offset, page.offset + PAGE_SIZE).equals(Buffer.alloc(PAGE_SIZE, i + 1)), `touched page ${i}`);
  });
  assertImageMatchesProcess(t, image, bytes, target.pid);
});

test.serial('guard pages (MADV_GUARD_INSTALL) are left out of the dump and read as zeros in the core; the pages around them are there', async (t) => {
  const target = await startTarget(t, 'guard');
  const base = parseInt(target.info[1], 16);
  if (target.info[2] !== '1') {
    t.pass('this kernel has no guard pages (MADV_GUARD_INSTALL refused): nothing to check');
    return;
  }
  const mnt = await mountImgfs(t);
  const handle = await openHeld(t, dumpOf(mnt.dir, target.pid));
  const bytes = await readWhole(handle);
  const image = parseImage(bytes);
  const dumped = image.pages.filter((page) => page.vaddr >= base && page.vaddr < base + 64 * PAGE_SIZE).map((page) => (page.vaddr - base) / PAGE_SIZE);
  t.deepEqual(dumped, [...Array(64).keys()].filter((i) => i < 8 || i >= 12), 'every page but the four guard pages');
  assertImageMatchesProcess(t, image, bytes, target.pid);

  const core = await readFileAsync(path.join(mnt.dir, String(target.pid), 'core'));
  const load = loadAt(parseElfCore(core), base)!;
  const region = loadBytes(core, load).subarray(base - Number(load.vaddr), base - Number(load.vaddr) + 64 * PAGE_SIZE);
  t.true(region.subarray(8 * PAGE_SIZE, 12 * PAGE_SIZE).equals(Buffer.alloc(4 * PAGE_SIZE)), 'guard pages: zeros');
  t.true(region.subarray(0, 8 * PAGE_SIZE).equals(Buffer.alloc(8 * PAGE_SIZE, 'g')), 'the pages before');
  t.true(region.subarray(12 * PAGE_SIZE).equals(Buffer.alloc(52 * PAGE_SIZE, 'g')), 'the pages after');

  // In shared memory, whose object still holds the guarded pages' bytes: neither file fails.
  if (target.info[4] !== '1') return;
  const shared = parseInt(target.info[3], 16);
  const contents = decodeExtension(bytes.subarray(image.end), image.end).sharedMemory?.find((m) => m.start === shared);
  t.deepEqual([...contents!.pages.runsIn(shared, shared + 16 * PAGE_SIZE)], [[shared, shared + 4 * PAGE_SIZE], [shared + 6 * PAGE_SIZE, shared + 16 * PAGE_SIZE]], 'its pages but the guarded ones');
  const sharedLoad = loadAt(parseElfCore(core), shared)!;
  t.true(loadBytes(core, sharedLoad).equals(Buffer.concat([Buffer.alloc(4 * PAGE_SIZE, 's'), Buffer.alloc(2 * PAGE_SIZE), Buffer.alloc(10 * PAGE_SIZE, 's')])), 'the shared pages, zeros at the guard pages');
});

test.serial('cp of the whole dump and dd slices at any offset and size are byte-identical', async (t) => {
  const target = await startTarget(t, 'pattern', ['4']);
  const mnt = await mountImgfs(t);
  const work = await makeTempDir(t);
  const file = dumpOf(mnt.dir, target.pid);
  // Held open so that cp and every dd see the one shared snapshot.
  const handle = await openHeld(t, file);
  const size = (await handle.stat()).size;

  const copyPath = path.join(work, 'copy.img');
  await runOk('cp', [file, copyPath]);
  const copy = await fsp.readFile(copyPath);
  t.is(copy.length, size);
  const image = parseImage(copy);
  t.is(image.size, size);
  assertPagesEqualMemory(t, image, copy, target.pid);

  const vmasEnd = VMAS_OFFSET + (image.vmas.length + 1) * VMA_RECORD_SIZE;
  const boundaries = [0, HEADER_SIZE, REGS_OFFSET + 100, MM_OFFSET, VMAS_OFFSET, VMAS_OFFSET + 20, vmasEnd,
    vmasEnd + 8, vmasEnd + PAGE_RECORD_SIZE, vmasEnd + 3 * PAGE_RECORD_SIZE + 4100, size - PAGE_RECORD_SIZE - 8, size - 8];
  const next = prng(0x1dea);
  const slices: Array<{ offset: number; length: number; bs: number }> = [];
  for (const boundary of boundaries) {
    for (const delta of [-5, -1, 0, 3]) {
      const offset = boundary + delta;
      if (offset >= 0) slices.push({ offset, length: [1, 13, 4097, 9001][slices.length % 4], bs: [1000, 333, 4096, 65537][slices.length % 4] });
    }
  }
  for (let i = 0; i < 12; i++) {
    slices.push({ offset: Math.floor(next() * size), length: 1 + Math.floor(next() * 300_000), bs: [4096, 65537, 777, 131072][i % 4] });
  }
  slices.push({ offset: HEADER_SIZE - 3, length: 50, bs: 1 }, { offset: size - 3, length: 100, bs: 4096 },
    { offset: size + 10, length: 100, bs: 4096 });

  for (const [i, { offset, length, bs }] of slices.entries()) {
    const out = path.join(work, `slice-${i}`);
    await runOk('dd', [`if=${file}`, `of=${out}`, `bs=${bs}`, 'iflag=skip_bytes,count_bytes', `skip=${offset}`,
      `count=${length}`, 'status=none']);
    const slice = await fsp.readFile(out);
    t.true(slice.equals(copy.subarray(offset, offset + length)), `dd bs=${bs} skip_bytes=${offset} count_bytes=${length}`);
  }

  const blocks = size / PAGE_SIZE;
  for (let i = 0; i < 8; i++) {
    const skip = Math.floor(next() * blocks);
    const count = 1 + Math.floor(next() * 40);
    const out = path.join(work, `blocks-${i}`);
    await runOk('dd', [`if=${file}`, `of=${out}`, 'bs=4096', `skip=${skip}`, `count=${count}`, 'status=none']);
    const slice = await fsp.readFile(out);
    t.true(slice.equals(copy.subarray(skip * PAGE_SIZE, (skip + count) * PAGE_SIZE)), `dd bs=4096 skip=${skip} count=${count}`);
  }
});

test.serial('two concurrent cp give identical files, also of a target that changes its memory', async (t) => {
  const pattern = await startTarget(t, 'pattern', ['64']);
  const counter = await startTarget(t, 'counter');
  await counter.waitForLine((line) => line.startsWith('tick'));
  const mnt = await mountImgfs(t);
  const work = await makeTempDir(t);
  const copies = async (pid: number, name: string) => {
    const [a, b] = [path.join(work, `${name}-a`), path.join(work, `${name}-b`)];
    await Promise.all([runOk('cp', [dumpOf(mnt.dir, pid), a]), runOk('cp', [dumpOf(mnt.dir, pid), b])]);
    return [await fsp.readFile(a), await fsp.readFile(b)];
  };

  const [patternA, patternB] = await copies(pattern.pid, 'pattern');
  t.true(patternA.equals(patternB), 'concurrent copies of the pattern target');
  t.is(parseImage(patternA).size, patternA.length);

  // The counter changes its memory whenever it runs: copies taken while one open holds the
  // snapshot must still agree byte for byte with each other and with that open.
  const handle = await openHeld(t, dumpOf(mnt.dir, counter.pid));
  const [counterA, counterB] = await copies(counter.pid, 'counter');
  const held = await readWhole(handle);
  t.true(counterA.equals(counterB), 'concurrent copies of the counter target');
  t.true(counterA.equals(held), 'the copies equal what the held open reads');
});

test.serial('the target is frozen while a dump is open and runs on after the last close', async (t) => {
  const target = await startTarget(t, 'counter');
  await target.waitForLine((line) => line.startsWith('tick'));
  const mnt = await mountImgfs(t);
  const file = dumpOf(mnt.dir, target.pid);

  const first = await openHeld(t, file);
  t.true(threadStatuses(target.pid).every(isFrozen), `all threads in tracing stop: ${JSON.stringify(threadStatuses(target.pid))}`);
  const frozenValue = counterValue(target);
  const image = parseImage(await readWhole(first));
  const counterAddr = parseInt(target.info[1], 16);
  const counterPage = image.pages.find((page) => page.vaddr === counterAddr - (counterAddr % PAGE_SIZE));
  t.truthy(counterPage, 'the counter page is dumped');

  const second = await openHeld(t, file);
  await first.close();
  await sleep(300);
  t.true(threadStatuses(target.pid).every(isFrozen), 'still frozen while another open remains');
  t.is(counterValue(target), frozenValue, 'the counter did not move while frozen');

  const linesBefore = target.lines().length;
  await second.close();
  await waitUntil('the target to be released after the last close', () => threadStatuses(target.pid).every(isReleased));
  await target.waitForLine((line) => line.startsWith('tick'), { from: linesBefore });
  t.true(counterValue(target) > frozenValue, 'the counter advances after the last close');
});

test.serial('signals that come while the target is frozen reach it afterwards as they were sent: a timer\'s keep their si_value', async (t) => {
  const target = await startTarget(t, 'timer_signals');
  await target.waitForLine((line) => line.startsWith('ticks '));
  const mnt = await mountImgfs(t);
  for (let i = 0; i < 15; i++) {
    const handle = await fsp.open(dumpOf(mnt.dir, target.pid), 'r');
    await handle.read(Buffer.alloc(1), 0, 1, 0);
    await sleep(20); // frozen meanwhile: the timer's signals wait
    await handle.close();
  }
  const from = target.lines().length;
  const line = await target.waitForLine((l) => l.startsWith('ticks '), { from });
  const [, ticks, bad] = /^ticks (\d+) bad (\d+)$/.exec(line)!.map(Number);
  t.true(target.alive(), 'it runs on');
  t.true(ticks > 0);
  t.is(bad, 0, `no signal reached its handler without its siginfo: ${line}`);
});

test.serial('real-time signals queued while dumps are opened arrive all, in the order they were sent', async (t) => {
  const receiver = await startTarget(t, 'rt_signals', ['receive']);
  const mnt = await mountImgfs(t);
  const sent = 30_000;
  const sender = await startTarget(t, 'rt_signals', ['send', String(receiver.pid), String(sent)]);
  const done = sender.waitForLine((line) => line.startsWith('sent '), { timeoutMs: 60_000 });
  let opens = 0;
  for (let finished = false; !finished && opens < 200; opens++) {
    const handle = await fsp.open(dumpOf(mnt.dir, receiver.pid), 'r');
    await handle.read(Buffer.alloc(4096), 0, 4096, 0);
    await handle.close();
    finished = await Promise.race([done.then(() => true), sleep(1).then(() => false)]);
  }
  await done;
  const line = await receiver.waitForLine((l) => l.startsWith('got '));
  t.is(line, `got ${sent} disorder 0`, `after ${opens} dumps opened while they came`);
});

test.serial('a target stopped with SIGSTOP is dumped and stays stopped', async (t) => {
  const target = await startTarget(t, 'counter');
  await target.waitForLine((line) => line.startsWith('tick'));
  process.kill(target.pid, 'SIGSTOP');
  await waitUntil('the target to stop', () => threadStatuses(target.pid).every((status) => status.state === 'T'));
  const mnt = await mountImgfs(t);

  const handle = await openHeld(t, dumpOf(mnt.dir, target.pid));
  const bytes = await readWhole(handle);
  assertImageMatchesProcess(t, parseImage(bytes), bytes, target.pid);
  await handle.close();

  await waitUntil('the dumper to detach', () => threadStatuses(target.pid).every((status) => status.tracerPid === 0));
  // Let go, the task passes through the kernel on its way back into its stop ('R' for a moment).
  await waitUntil('the target back in its stop', () => threadStatuses(target.pid).every((status) => status.state === 'T'));
  const lines = target.lines().length;
  const value = counterValue(target);
  await sleep(300);
  t.deepEqual(threadStatuses(target.pid).map((status) => status.state), ['T'], 'still stopped after the dump');
  t.is(target.lines().length, lines, 'no tick while stopped');
  t.is(counterValue(target), value);

  process.kill(target.pid, 'SIGCONT');
  await target.waitForLine((line) => line.startsWith('tick'), { from: lines });
  t.pass('runs again on SIGCONT');
});

test.serial('every thread of a multi-threaded target is frozen during the dump, and all run on after', async (t) => {
  const target = await startTarget(t, 'threads');
  const mnt = await mountImgfs(t);
  const handle = await openHeld(t, dumpOf(mnt.dir, target.pid));

  const statuses = threadStatuses(target.pid);
  t.is(statuses.length, 5);
  t.deepEqual(statuses.filter((status) => !isFrozen(status)), [], 'every thread in tracing stop');
  t.is(new Set(statuses.map((status) => status.tracerPid)).size, 1, 'one tracer for all threads');
  const bytes = await readWhole(handle);
  assertImageMatchesProcess(t, parseImage(bytes), bytes, target.pid);
  await handle.close();

  await waitUntil('every thread to be released', () => threadStatuses(target.pid).every(isReleased));
  t.is(threadStatuses(target.pid).length, 5);
});

test.serial('a process whose main thread has exited (pthread_exit) is dumped through the threads it still runs', async (t) => {
  const target = await startTarget(t, 'leader_exit');
  const tids = target.info.slice(2).map(Number);
  await waitUntil('the main thread to be a zombie', () => taskStatus(target.pid).state === 'Z');
  const mnt = await mountImgfs(t);
  t.deepEqual((await fsp.readdir(path.join(mnt.dir, String(target.pid)))).sort(), ['core', 'dump']);
  const file = dumpOf(mnt.dir, target.pid);
  const statSize = (await fsp.stat(file)).size;
  const handle = await openHeld(t, file);
  t.true(tids.every((tid) => isFrozen(taskStatus(target.pid, tid))), 'both threads frozen');
  const bytes = await readWhole(handle);
  const image = parseImage(bytes);
  // /proc/<pid>/maps, pagemap and mem of the zombie leader are empty: the ground truth is a thread's.
  assertImageMatchesProcess(t, image, bytes, tids[0]);
  t.true(image.vmas.length > 0 && image.pages.length > 0);
  t.is(statSize, bytes.length, 'stat size: the bytes a read yields');
  const ext = decodeExtension(bytes.subarray(image.end), image.end);
  t.deepEqual(ext.threads.map((thread) => thread.tid), tids, 'the live threads, the first standing for the process');
  t.is(image.regs.ip, ext.threads[0].regs.rip, 'v0 registers: the first live thread\'s');
  await handle.close();
  await waitUntil('both threads to be released', () => tids.every((tid) => isReleased(taskStatus(target.pid, tid))));
  const first = numbersOf(await target.waitForLine((line) => line.startsWith('counts '), { from: target.lines().length }));
  const later = numbersOf(await target.waitForLine((line) => line.startsWith('counts '), { from: target.lines().length + 1 }));
  t.true(later.every((count, i) => count > first[i]), `both count on: ${first} -> ${later}`);
});

test.serial('file mappings: modified private pages carry their bytes, the shared mapping carries none', async (t) => {
  const work = await makeTempDir(t);
  const target = await startTarget(t, 'filemap', [path.join(work, 'private.dat'), path.join(work, 'shared.dat')]);
  const privateMap = parseInt(target.info[1], 16);
  const sharedMap = parseInt(target.info[2], 16);
  const mappedPages = Number(target.info[3]);
  const mnt = await mountImgfs(t);
  const handle = await openHeld(t, dumpOf(mnt.dir, target.pid));
  const bytes = await readWhole(handle);
  const image = parseImage(bytes);
  assertImageMatchesProcess(t, image, bytes, target.pid);

  const privateVma = image.vmas.find((vma) => vma.start === privateMap);
  t.like(privateVma, { flags: MAP_PRIVATE, prot: PROT_READ | PROT_WRITE, end: privateMap + mappedPages * PAGE_SIZE, pgoff: 2 });
  const privatePages = image.pages.filter((page) => page.vaddr >= privateMap && page.vaddr < privateMap + mappedPages * PAGE_SIZE);
  t.deepEqual(privatePages.map((page) => (page.vaddr - privateMap) / PAGE_SIZE), [...Array(mappedPages).keys()],
    'every touched page of the private file mapping is dumped');
  for (const [i, page] of privatePages.entries()) {
    // Mapping page i is file page i + 2, filled with 'A' + i + 2; pages 1 and 3 were written to.
    const expected = Buffer.alloc(PAGE_SIZE, 0x43 + i);
    if (i === 1 || i === 3) Buffer.from(`modified page ${i}\0`).copy(expected);
    t.true(bytes.subarray(page.offset, page.offset + PAGE_SIZE).equals(expected), `private page ${i}`);
  }

  const sharedVma = image.vmas.find((vma) => vma.start === sharedMap);
  t.like(sharedVma, { flags: MAP_SHARED, prot: PROT_READ | PROT_WRITE, pgoff: 0 });
  t.deepEqual(image.pages.filter((page) => page.vaddr >= sharedMap && page.vaddr < sharedVma!.end).map((page) => hex(page.vaddr)), [],
    'no page records for the shared mapping');
  t.true(residentPages(target.pid, sharedMap, sharedVma!.end).length > 0, 'although its pages are resident');
});

test.serial('VMAs of a frozen target match /proc/<pid>/maps without [vsyscall]', async (t) => {
  const target = await startTarget(t, 'counter');
  const mnt = await mountImgfs(t);
  const handle = await openHeld(t, dumpOf(mnt.dir, target.pid));
  const image = parseImage(await readWhole(handle));
  assertVmasMatch(t, image, target.pid);
  t.false(image.vmas.some((vma) => vma.start >= 0xffffffffff600000), 'no [vsyscall]');
  // Root passes the mode check, so the file system itself must refuse a write open.
  t.truthy(await errnoOf(fsp.writeFile(dumpOf(mnt.dir, target.pid), 'x')), 'the dump is not writable, even by root');
});
