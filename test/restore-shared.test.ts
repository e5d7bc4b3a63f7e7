// Shared memory without a file to open again (shared anonymous memory, memfd, SysV shm, a deleted
// file: restore_shm.c) travels in the extension's SHARED_PAGES records: the dump's size is known
// before it is read, its records hold the bytes the target had (also pages only a forked child or
// a descriptor wrote), and a restore, from a file or a pipe, gives them back.

import test, { type ExecutionContext } from 'ava';
import { promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { decodeExtension, encodeExtension, RecordType } from '../src/extension.js';
import { readImage } from '../src/show.js';
import { makeTempDir } from './helpers/files.js';
import { readMaps, readMem } from './helpers/groundtruth.js';
import { PAGE_RECORD_SIZE, PAGE_SIZE, parseImage } from './helpers/image.js';
import { mountImgfs } from './helpers/mount.js';
import { dumpToFile, killOriginal, startRestorer } from './helpers/restore.js';
import { runOk } from './helpers/run.js';
import { startTarget, type Target } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';

const F_SEAL_SHRINK = 2;
const F_SEAL_GROW = 4;
const F_SEAL_WRITE = 8;

const page = (fill: string) => Buffer.alloc(PAGE_SIZE, fill);
const zeros = page('\0');
const text = (s: string) => Buffer.concat([Buffer.from(s), Buffer.alloc(PAGE_SIZE - s.length)]);
const goneFirst = () => Buffer.concat([Buffer.from('deleted write'), Buffer.alloc(1), Buffer.alloc(PAGE_SIZE - 14, 'g')]);

interface Maps { anon: number; memfd: number; sysv: number; gone: number }

async function start(t: ExecutionContext): Promise<{ target: Target; dir: string; at: Maps }> {
  const dir = await makeTempDir(t, 'imgfs-shared-');
  const target = await startTarget(t, 'restore_shm', [dir]);
  const [anon, memfd, sysv, gone] = target.info.slice(1).map((field) => parseInt(field, 16));
  return { target, dir, at: { anon, memfd, sysv, gone } };
}

/** The bytes every page of the four mappings had, as the target left them. */
function expected(at: Maps): Map<number, Buffer> {
  return new Map([
    [at.anon, page('a')], [at.anon + PAGE_SIZE, zeros], [at.anon + 2 * PAGE_SIZE, page('c')], [at.anon + 3 * PAGE_SIZE, zeros],
    [at.memfd, zeros], [at.memfd + PAGE_SIZE, text('memfd bytes')], [at.memfd + 2 * PAGE_SIZE, zeros], [at.memfd + 3 * PAGE_SIZE, zeros],
    [at.sysv, page('V')], [at.sysv + PAGE_SIZE, zeros],
    [at.gone, goneFirst()], [at.gone + PAGE_SIZE, page('g')],
  ]);
}

function checkRestored(t: ExecutionContext, pid: number, at: Maps): void {
  for (const [address, bytes] of expected(at)) t.true(readMem(pid, address, PAGE_SIZE).equals(bytes), `page 0x${address.toString(16)}`);
  const maps = readMaps(pid);
  const perms = (address: number) => maps.find((m) => m.start === address)?.perms;
  t.deepEqual([perms(at.anon), perms(at.memfd), perms(at.sysv), perms(at.gone)], ['rw-s', 'r--s', 'rw-s', 'rw-s']);
}

/** The SHARED_PAGES records of an image: each VMA and its page records (address, bytes). */
function sharedPageRecords(image: Buffer): { start: number; end: number; pages: [number, Buffer][] }[] {
  const out: { start: number; end: number; pages: [number, Buffer][] }[] = [];
  for (let at = parseImage(image).extension!.offset + 16; image.readUInt32LE(at) !== RecordType.END;) {
    const length = image.readUInt32LE(at + 4);
    if (image.readUInt32LE(at) === RecordType.SHARED_PAGES) {
      const count = image.readUInt32LE(at + 24);
      if (length !== 24 + count * PAGE_RECORD_SIZE) throw new Error(`SHARED_PAGES record at ${at}: length ${length} for ${count} pages`);
      out.push({
        start: Number(image.readBigUInt64LE(at + 8)), end: Number(image.readBigUInt64LE(at + 16)),
        pages: Array.from({ length: count }, (_, i) => {
          const record = at + 32 + i * PAGE_RECORD_SIZE;
          return [Number(image.readBigUInt64LE(record)), image.subarray(record + 8, record + PAGE_RECORD_SIZE)];
        }),
      });
    }
    at += 8 + Math.ceil(length / 8) * 8;
  }
  return out;
}

test('the dump carries the pages that hold data, its size known before it is read', async (t) => {
  const { target, at } = await start(t);
  const mnt = await mountImgfs(t);
  const dump = path.join(mnt.dir, String(target.pid), 'dump');
  const previewed = statSync(dump).size;
  const dir = await makeTempDir(t, 'imgfs-shared-copy-');
  await runOk('cp', [dump, path.join(dir, 'task.img')]);
  const image = await fsp.readFile(path.join(dir, 'task.img'));
  t.is(image.length, previewed, 'the size before any open is the size read');

  const records = sharedPageRecords(image);
  const pagesOf = (start: number) => records.find((r) => r.start === start)?.pages.map(([vaddr]) => vaddr);
  t.deepEqual(pagesOf(at.anon), [at.anon, at.anon + 2 * PAGE_SIZE], 'the child\'s page too, the untouched ones not');
  t.deepEqual(pagesOf(at.memfd), [at.memfd + PAGE_SIZE], 'the page written through the descriptor');
  t.deepEqual(pagesOf(at.sysv), [at.sysv]);
  t.true(pagesOf(at.gone)!.includes(at.gone));
  const want = expected(at);
  for (const { pages } of records) for (const [vaddr, bytes] of pages) t.true(bytes.equals(want.get(vaddr)!), `page 0x${vaddr.toString(16)}`);

  const summary = await readImage(path.join(dir, 'task.img'));
  t.deepEqual(summary.extension!.content.sharedMemory!.map((m) => [m.start, m.pages.totalPages]),
    records.map((r) => [r.start, r.pages.length]));
});

test('a restore gives the shared memory back, with one warning per file that cannot be shared again', async (t) => {
  const { target, dir, at } = await start(t);
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);
  const restorer = startRestorer(t, [image]);
  checkRestored(t, await restorer.restoredPid(), at);
  // Written before the process runs, read by this process's event loop maybe after it saw it run.
  await waitUntil('the warnings', () => ['/memfd:box', '/SYSV', 'gone.bin'].every((name) => restorer.stderr().includes(name)));
  const warnings = restorer.stderr().split('\n').filter((line) => line.includes('warning'));
  t.false(restorer.stderr().includes('starts zeroed'));
  const cannotShare = (name: string, address: number) => new RegExp(
    `warning: ${name}: shared memory mapped at 0x${address.toString(16)}-0x[0-9a-f]+ comes back with its contents, as the process's own: a process that shared it at the dump, if any, does not share it now$`);
  for (const [name, address] of [['/memfd:box \\(deleted\\)', at.memfd], ['/SYSV00000000 \\(deleted\\)', at.sysv], [`${dir}/gone.bin \\(deleted\\)`, at.gone]] as const) {
    t.is(warnings.filter((line) => cannotShare(name, address).test(line)).length, 1, `${name}: ${restorer.stderr()}`);
  }
  t.false(warnings.some((line) => line.includes('/dev/zero')), 'shared anonymous memory needs no warning');
});

test('a restore from a pipe gives the shared memory back', async (t) => {
  const { target, dir, at } = await start(t);
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);
  const restorer = startRestorer(t, ['-'], { stdinFile: image });
  checkRestored(t, await restorer.restoredPid(), at);
});

test('an older image, without SHARED_PAGES records: shared anonymous memory starts zeroed, with a warning', async (t) => {
  const { target, dir, at } = await start(t);
  const image = await fsp.readFile(await dumpToFile(t, target, dir));
  await killOriginal(target);
  const { end } = parseImage(image);
  const older = decodeExtension(image.subarray(end), end);
  delete older.sharedMemory;
  const file = path.join(dir, 'older.img');
  await fsp.writeFile(file, Buffer.concat([image.subarray(0, end), encodeExtension(older)]));

  const restorer = startRestorer(t, ['--anon-fallback', file]);
  const pid = await restorer.restoredPid();
  t.true(readMem(pid, at.anon, 4 * PAGE_SIZE).equals(Buffer.alloc(4 * PAGE_SIZE)));
  await waitUntil('the warnings', () => restorer.stderr().includes('starts zeroed') && restorer.stderr().includes('/memfd:box'));
  t.regex(restorer.stderr(), new RegExp(`warning: shared anonymous memory 0x${at.anon.toString(16)}-0x[0-9a-f]+: the image carries no contents for it \\(an older image\\), so it starts zeroed\\n`));
  t.regex(restorer.stderr(), /warning: \/memfd:box \(deleted\): was deleted before the dump: mapped as anonymous memory \(--anon-fallback\): what the image carries of it \(its private pages in memory at the dump\) comes back, the rest reads as zeros\n/);
});

test('one memory mapped twice (a memfd mapped twice, mremap of shared memory, a SysV segment attached twice, a part mapped again below the whole) is one memory again', async (t) => {
  const target = await startTarget(t, 'restore_doublemap');
  await target.waitForLine((line) => line.startsWith('tick 3 '));
  const image = await dumpToFile(t, target);
  await killOriginal(target);

  const restorer = startRestorer(t, [image]);
  await restorer.restoredPid();
  const from = restorer.lines().length;
  for (const line of [await restorer.waitForLine((l) => l.startsWith('tick '), { from }), await restorer.waitForLine((l) => l.startsWith('tick '), { from: from + 2 })]) {
    const [, n, memfd, anonymous, sysv, part] = line.split(' ');
    t.deepEqual([memfd, anonymous, sysv, part], [`m${n}`, `s${n}`, `x${n}`, `b${n}`], `what the first mappings were given shows through the second ones: ${line}`);
  }
  t.false(restorer.stderr().includes('is one object'), restorer.stderr());
  const names = readMaps(await restorer.restoredPid()).map((m) => m.name);
  t.true(names.includes('/memfd:doublemap (deleted)') && !names.some((name) => name.includes('memfd:memfd:')), names.join(' '));
});

test('a memfd the process has both a descriptor and a mapping of is one memory again, also one too large to travel with its descriptor (what it held outside its mappings reads as zeros)', async (t) => {
  const target = await startTarget(t, 'restore_memfdmap');
  await target.waitForLine((line) => line.startsWith('tick 3 '));
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  const { fds } = (await readImage(image)).extension!.content;
  t.truthy(fds.find((fd) => fd.target === '/memfd:small (deleted)')?.content, 'the small one carries its bytes with its descriptor');
  t.falsy(fds.find((fd) => fd.target === '/memfd:large (deleted)')?.content, 'the large one does not');

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  const from = restorer.lines().length;
  for (const line of [await restorer.waitForLine((l) => l.startsWith('tick '), { from }), await restorer.waitForLine((l) => l.startsWith('tick '), { from: from + 2 })]) {
    const [, n, ...views] = line.split(' ');
    t.deepEqual(views, [`m${n}`, `f${n}`, `m${n}`, `f${n}`, String(F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW), 'sealed-bytes'],
      `what one side was given shows through the other: ${line}`);
  }
  const maps = readMaps(pid);
  for (const name of ['small', 'large', 'sealed']) {
    t.true(maps.some((m) => m.name === `/memfd:${name} (deleted)`), `${name} is mapped from a memfd again`);
  }
  const lost = restorer.stderr().split('\n').filter((line) => line.includes('/memfd:') && (line.includes('/dev/null') || line.includes('zeros')));
  t.deepEqual(lost, [`imgfs restore: warning: fd ${target.info[1]} (/memfd:part (deleted)): too large for its bytes to travel with it; what its mappings held comes back, the other ${12 << 20} bytes read as zeros`]);
  const part = await fsp.readFile(`/proc/${pid}/fd/${target.info[1]}`);
  t.is(part.length, 20 << 20);
  t.true(part.subarray(0, 12 << 20).equals(Buffer.alloc(12 << 20)), 'outside its mapping: zeros');
  t.true(part.subarray(12 << 20).equals(Buffer.alloc(8 << 20, 'P')), 'its mapping\'s bytes');
});
