// A restore of every kind of mapping core_maps.c makes, read back from the restored process's
// memory: private pages carry their dumped bytes (also under PROT_NONE and MADV_DONTDUMP), file
// mappings are their files again, and shared anonymous memory comes back with its bytes (the
// extension's SHARED_PAGES record), without a warning.

import test from 'ava';
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir } from './helpers/files.js';
import { guardPages, readMaps, readMem } from './helpers/groundtruth.js';
import { PAGE_SIZE } from './helpers/image.js';
import { continuesCount, dumpToFile, imageWord, killOriginal, numbersOf, readImageExtension, showText, startRestorer } from './helpers/restore.js';
import { startTarget } from './helpers/targets.js';
import { waitUntil } from './helpers/wait.js';

const SPARSE_TOUCHED = 4097;
const filled = (char: string, pages = 1) => Buffer.alloc(pages * PAGE_SIZE, char);
const hex = (n: number) => n.toString(16);

test('every kind of mapping comes back, shared anonymous memory with its bytes', async (t) => {
  const dir = await makeTempDir(t);
  const target = await startTarget(t, 'core_maps', [dir]);
  const [sparse, anonshared, dontdump, untouched, data, , shared, shortmap, noread] =
    target.info.slice(1).map((field) => parseInt(field, 16));
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  const mem = (address: number, length: number) => readMem(pid, address, length);

  t.true(mem(sparse, PAGE_SIZE).equals(filled('S')));
  t.true(mem(sparse + PAGE_SIZE, PAGE_SIZE).equals(filled('\0')), 'an untouched page of the sparse mapping');
  const touched = sparse + SPARSE_TOUCHED * PAGE_SIZE;
  t.true(mem(touched, PAGE_SIZE).equals(filled(String.fromCharCode('S'.charCodeAt(0) + (SPARSE_TOUCHED % 16)))));
  t.true(mem(dontdump, 4 * PAGE_SIZE).equals(filled('N', 4)), 'v0 dumps MADV_DONTDUMP pages of private memory');
  t.true(mem(untouched, 16 * PAGE_SIZE).equals(filled('\0', 16)));
  t.true(mem(data, 4 * PAGE_SIZE).equals(filled('D', 4)), 'mapped from data.bin again');
  t.is(mem(shortmap, 11).toString(), 'short write');
  t.true(mem(noread, 2 * PAGE_SIZE).equals(filled('R', 2)), 'PROT_NONE private memory');
  t.is(mem(shared, 12).toString(), 'shared write', 'shared.bin mapped again, with what the target wrote to it');

  const maps = readMaps(pid);
  const at = (address: number) => maps.find((entry) => entry.start <= address && address < entry.end);
  t.is(at(shared)?.name, `${dir}/shared.bin`);
  t.is(at(shared)?.perms, 'rw-s');
  t.is(at(noread)?.perms, '---p');
  t.is(at(anonshared)?.perms, 'rw-s');
  t.true(mem(anonshared, 4 * PAGE_SIZE).equals(filled('A', 4)), 'shared anonymous memory with its bytes');
  t.false(restorer.stderr().includes(`0x${hex(anonshared)}`), `no warning about it: ${restorer.stderr()}`);
});

test('guard pages (MADV_GUARD_INSTALL) come back as guard pages, the pages around them with their bytes', async (t) => {
  const target = await startTarget(t, 'guard');
  const base = parseInt(target.info[1], 16);
  if (target.info[2] !== '1') {
    t.pass('this kernel has no guard pages (MADV_GUARD_INSTALL refused): nothing to check');
    return;
  }
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  const shared = parseInt(target.info[3], 16);
  const runs: Array<[number, number]> = [[base + 8 * PAGE_SIZE, base + 12 * PAGE_SIZE]];
  if (target.info[4] === '1') runs.push([shared + 4 * PAGE_SIZE, shared + 6 * PAGE_SIZE]);
  runs.sort((a, b) => a[0] - b[0]);
  t.deepEqual((await readImageExtension(image)).guardPages, runs);
  t.regex(await showText(image), new RegExp(`guard pages \\(${runs.length} runs?\\)\\n${runs.map(([s, e]) => `  ${s.toString(16)}-${e.toString(16)}\\n`).join('')}`));

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  t.deepEqual(guardPages(pid, base, base + 64 * PAGE_SIZE), [8, 9, 10, 11].map((i) => base + i * PAGE_SIZE));
  t.true(readMem(pid, base, 8 * PAGE_SIZE).equals(Buffer.alloc(8 * PAGE_SIZE, 'g')), 'the pages before');
  t.true(readMem(pid, base + 12 * PAGE_SIZE, 52 * PAGE_SIZE).equals(Buffer.alloc(52 * PAGE_SIZE, 'g')), 'the pages after');
  if (target.info[4] === '1') {
    t.deepEqual(guardPages(pid, shared, shared + 16 * PAGE_SIZE), [4, 5].map((i) => shared + i * PAGE_SIZE), 'in shared memory too');
    t.true(readMem(pid, shared, 4 * PAGE_SIZE).equals(Buffer.alloc(4 * PAGE_SIZE, 's')), 'the shared pages before');
    t.true(readMem(pid, shared + 6 * PAGE_SIZE, 10 * PAGE_SIZE).equals(Buffer.alloc(10 * PAGE_SIZE, 's')), 'the shared pages after');
  }
  t.false(restorer.stderr().includes('guard'), restorer.stderr());
});

test('a private file mapping the program wrote and then made PROT_NONE comes back with its written page, still PROT_NONE', async (t) => {
  const dir = await makeTempDir(t);
  const target = await startTarget(t, 'restore_protnone', [dir]);
  const at = parseInt(target.info[1], 16);
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  const mapping = readMaps(pid).find((m) => m.start === at);
  t.is(mapping?.perms, '---p');
  const written = Buffer.concat([Buffer.from('private write\0'), Buffer.alloc(PAGE_SIZE - 14, 'f')]);
  t.true(readMem(pid, at, PAGE_SIZE).equals(written), 'the written page, from the image');
  t.true(readMem(pid, at + PAGE_SIZE, PAGE_SIZE).equals(Buffer.alloc(PAGE_SIZE, 'f')), 'the untouched one, from the file');
});

test('a program deleted since it started (an upgrade replaced it) comes back from the bytes the image carries', async (t) => {
  const dir = await makeTempDir(t);
  const target = await startTarget(t, 'counter', [], { copyInto: dir });
  const program = target.binary;
  await target.waitForLine((line) => line.startsWith('tick'));
  const size = (await fsp.stat(program)).size;
  await fsp.rm(program);
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);
  t.deepEqual((await readImageExtension(image)).mappedContents?.map((c) => c.bytes.length), [size], 'its bytes, once for all its mappings');
  t.regex(await showText(image), new RegExp(`deleted files mapped, carried \\(1\\)\\n  file \\d+:\\d+ ${size} bytes \\(mode 0755\\)\\n`));

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  const dumped = Number(await imageWord(image, parseInt(target.info[1], 16)));
  // Dumped in its sleep, it prints the next value; between its increment and its print, that one.
  const tick = await restorer.waitForLine((line) => line.startsWith('tick'));
  t.true(continuesCount(numbersOf(tick)[0], dumped), `${tick} goes on from the dumped ${dumped}`);
  t.is(await fsp.readlink(`/proc/${pid}/exe`), '/memfd:counter (deleted)', 'its executable too');
  t.true(readMaps(pid).some((m) => m.name === '/memfd:counter (deleted)'), 'mapped from the bytes made again');
});

test('a file mapped shared that was written since the dump is mapped as it is now, with a warning (it holds its bytes itself)', async (t) => {
  const dir = await makeTempDir(t);
  const file = path.join(dir, 'data.bin');
  const target = await startTarget(t, 'restore_sharedfile', [file]);
  await target.waitForLine((line) => line.startsWith('shows mapped__'));
  const image = await dumpToFile(t, target, dir);
  await killOriginal(target);
  const handle = await fsp.open(file, 'r+');
  await handle.write(Buffer.from('written_'), 0, 8, 0); // what the process, or another, wrote since
  await handle.close();

  const restorer = startRestorer(t, [image]);
  await restorer.restoredPid();
  t.is(await restorer.waitForLine((line) => line.startsWith('shows ')), 'shows written_', 'the file as it is now');
  await waitUntil('its warning', () => restorer.stderr().includes(file));
  t.regex(restorer.stderr(), new RegExp(`warning: ${file}: changed since the dump \\(modification time differs\\): mapped shared as it is now \\(at 0x[0-9a-f]+-0x[0-9a-f]+\\)\\n`));
});

test('memory in huge pages (MAP_HUGETLB) is carried once, as memory, and comes back with its bytes in ordinary pages, with a warning', async (t) => {
  // Three huge pages more than the machine holds in reserve, given back after.
  const reserve = '/proc/sys/vm/nr_hugepages';
  const reserved = Number(await fsp.readFile(reserve, 'utf8'));
  await fsp.writeFile(reserve, String(reserved + 3));
  const target = await startTarget(t, 'hugetlb');
  t.teardown(() => fsp.writeFile(reserve, String(reserved)));
  const [privateAt, sharedAt] = [parseInt(target.info[1], 16), parseInt(target.info[2], 16)];
  if (privateAt === 0) {
    t.pass('this machine has no huge pages to give: nothing to check');
    return;
  }
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  t.is((await readImageExtension(image)).mappedContents, undefined, 'no copy of it as a deleted file');
  t.true((await fsp.stat(image)).size < 8 << 20, 'its 6 MiB once, not twice');

  const restorer = startRestorer(t, [image]);
  const pid = await restorer.restoredPid();
  t.true(readMem(pid, privateAt, 4 << 20).equals(Buffer.alloc(4 << 20, 'h')), 'the private memory');
  t.true(readMem(pid, sharedAt, 2 << 20).equals(Buffer.alloc(2 << 20, 's')), 'the shared memory');
  await waitUntil('the warning', () => restorer.stderr().includes('MAP_HUGETLB'));
  const lines = restorer.stderr().split('\n').filter((line) => /HUGETLB|hugepage|shared/.test(line));
  t.deepEqual(lines, [`imgfs restore: warning: memory mapped with MAP_HUGETLB (at 0x${privateAt.toString(16)}-0x${(privateAt + (4 << 20)).toString(16)}) comes back in ordinary pages`]);
});

test('a process that unmapped its vDSO, its threads spinning in user code: dumped (the calls asked of it borrow a syscall instruction from its libc) and restored without one, every thread counting on', async (t) => {
  const target = await startTarget(t, 'novdso');
  const counters = parseInt(target.info[1], 16);
  const threads = Number(target.info[2]);
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  t.is((await readImageExtension(image)).threads.length, threads);

  const restorer = startRestorer(t, [image, '--detach']);
  const pid = await restorer.restoredPid();
  t.is(await restorer.exited, 0, restorer.stderr());
  const countsOf = () => { const bytes = readMem(pid, counters, 8 * threads); return [...Array(threads).keys()].map((i) => bytes.readBigUInt64LE(8 * i)); };
  const before = countsOf();
  await waitUntil('every thread to count on', () => countsOf().every((count, i) => count > before[i]));
  t.false(readMaps(pid).some((m) => m.name === '[vdso]'), 'still without a vDSO');
  t.false(restorer.stderr().includes('vDSO'), restorer.stderr());
});

test('memfd_secret memory, which no other process may read: dumped without its bytes, in full, and restored as new secret memory, zeroed, with a warning', async (t) => {
  const target = await startTarget(t, 'secretmem');
  const secret = parseInt(target.info[1], 16);
  if (secret === 0) {
    t.pass('this kernel has no secret memory (memfd_secret refused): nothing to check');
    return;
  }
  const image = await dumpToFile(t, target);
  await killOriginal(target);
  t.regex(await showText(image), new RegExp(`${hex(secret)}-${hex(secret + 4 * PAGE_SIZE)} rw-s file`));
  t.deepEqual((await readImageExtension(image)).sharedMemory ?? [], [], 'no bytes carried');

  const restorer = startRestorer(t, [image, '--detach']);
  const pid = await restorer.restoredPid();
  t.is(await restorer.exited, 0, restorer.stderr());
  t.true(readMaps(pid).some((m) => m.start === secret && m.name === '/secretmem (deleted)'), 'secret memory again');
  t.regex(restorer.stderr(), new RegExp(`warning: memfd_secret memory at 0x${hex(secret)}-0x${hex(secret + 4 * PAGE_SIZE)}: .* comes back as new secret memory, zeroed\\n`));
  t.regex(restorer.stderr(), new RegExp(`warning: fd ${target.info[2]} \\(/secretmem \\(deleted\\)\\): a descriptor of memfd_secret memory.*: replaced by /dev/null\\n`));
  t.notRegex(restorer.stderr(), /not restored on/, 'its locked and dontdump flags are the kernel\'s own');
});

test('a private mapping of /dev/zero, a 64 GiB MAP_NORESERVE reservation, sealed pages and MAP_GROWSDOWN pages come back, the last without growing (one warning)', async (t) => {
  const target = await startTarget(t, 'restore_mapflags');
  const [devzero, reservation, sealed, growsdown] = target.info.slice(1).map((field) => parseInt(field, 16));
  const sealedShown = sealed !== 0 && smapsFlags(target.pid, sealed).includes('sl');
  const image = await dumpToFile(t, target);
  await killOriginal(target);

  const restorer = startRestorer(t, [image, '--detach']);
  const pid = await restorer.restoredPid();
  t.is(await restorer.exited, 0, restorer.stderr());
  const maps = readMaps(pid);
  t.like(maps.find((m) => m.start === devzero), { end: devzero + 4 * PAGE_SIZE, name: '/dev/zero' });
  t.true(readMem(pid, devzero, 4 * PAGE_SIZE).equals(Buffer.concat([filled('z', 2), Buffer.alloc(2 * PAGE_SIZE)])), 'its written pages, and zeros');
  t.like(maps.find((m) => m.start === reservation), { end: reservation + 2 ** 36 });
  t.true(readMem(pid, growsdown, 4 * PAGE_SIZE).equals(filled('g', 4)));
  t.regex(restorer.stderr(), new RegExp(`warning: growsdown is not restored on 0x${hex(growsdown)}-0x${hex(growsdown + 4 * PAGE_SIZE)}: `));
  if (!sealedShown) {
    t.pass('this kernel has no mseal, or its smaps does not show it (before 6.12): no sealed pages to check');
    return;
  }
  t.true(readMem(pid, sealed, 4 * PAGE_SIZE).equals(filled('s', 4)));
  t.true(smapsFlags(pid, sealed).includes('sl'), 'sealed again');
  t.notRegex(restorer.stderr(), /sealed is not restored/);
});

function smapsFlags(pid: number, start: number): string[] {
  const smaps = readFileSync(`/proc/${pid}/smaps`, 'latin1');
  const from = smaps.indexOf(`${hex(start)}-`);
  return /^VmFlags:(.*)$/m.exec(smaps.slice(from))![1].trim().split(' ');
}
