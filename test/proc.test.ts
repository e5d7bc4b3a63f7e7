import test from 'ava';
import fs from 'node:fs';
import { PAGE_SIZE, type Vma } from '../src/model.js';
import { PageIndex, PageIndexBuilder } from '../src/pageindex.js';
import { ProcParseError } from '../src/proc/errors.js';
import { mountedDevice } from '../src/proc/mountinfo.js';
import { parsePasswdGroups } from '../src/proc/owner.js';
import { PRESENT_OR_SWAPPED, rangesWithPages, scanPages, scanPagesWithIoctl, scanPagesWithPagemap } from '../src/proc/pagemap.js';
import { parseSmaps, readSmaps } from '../src/proc/smaps.js';
import { isKernelThread, parseStat, readStat } from '../src/proc/stat.js';
import { statusField, statusMask, statusNumber } from '../src/proc/status.js';
import { startTarget } from './helpers/targets.js';

const GIB = 2 ** 30;
const MIB = 2 ** 20;

// One VMA's worth of the numeric smaps fields, as kernel 6.18 prints them.
function smapsFields(kb: number, vmFlags: string): string {
  const keys = ['Size', 'KernelPageSize', 'MMUPageSize', 'Rss', 'Pss', 'Pss_Dirty', 'Shared_Clean', 'Shared_Dirty',
    'Private_Clean', 'Private_Dirty', 'Referenced', 'Anonymous', 'KSM', 'LazyFree', 'AnonHugePages',
    'ShmemPmdMapped', 'FilePmdMapped', 'Shared_Hugetlb', 'Private_Hugetlb', 'Swap', 'SwapPss', 'Locked'];
  const lines = keys.map((key) => `${`${key}:`.padEnd(16)}${String(kb).padStart(8)} kB`);
  return `${lines.join('\n')}\nTHPeligible:           0\nProtectionKey:         0\nVmFlags: ${vmFlags} \n`;
}

const MAPS_FIXTURE = [
  '559518a4a000-559518a4c000 r--p 00000000 fe:00 260131                     /usr/bin/cat',
  '559518a4c000-559518a51000 r-xp 00002000 fe:00 260131                     /usr/bin/cat',
  '55bc03766000-55bc03787000 rw-p 00000000 00:00 0                          [heap]',
  '7f3346000000-7f3346001000 rw-s 00000000 00:01 4123                       /memfd:ring buffer (deleted)',
  '7f3346001000-7f3346003000 r--p 00001000 fe:00 99                         /home/u/my lib (2).so',
  '7f3346003000-7f3346004000 rw-p 00000000 fe:00 77                         /tmp/gone (deleted)',
  '7f3346004000-7f3346008000 rw-p 00000000 00:00 0 ',
  '7f3346008000-7f3346009000 rw-p 00000000 00:00 0                          [anon:worker pool]',
  '7ffce99f6000-7ffce9a17000 rw-p 00000000 00:00 0                          [stack]',
  '7ffce9bfa000-7ffce9bfe000 r--p 00000000 00:00 0                          [vvar]',
  'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]',
];
const FIXTURE_FLAGS = ['rd mr mw me', 'rd ex mr mw me', 'rd wr mr mw me ac', 'rd wr sh mr mw me ms sd',
  'rd mr mw me', 'rd wr mr mw me ac', 'rd wr mr mw me ac', 'rd wr mr mw me ac', 'rd wr mr mw me gd ac',
  'rd mr pf io de dd', 'ex'];
const SMAPS_FIXTURE = MAPS_FIXTURE.map((line, i) => `${line}\n${smapsFields(4, FIXTURE_FLAGS[i])}`).join('');
const MAPS_TEXT = `${MAPS_FIXTURE.join('\n')}\n`;

// /proc/<pid>/stat of a user process and of kthreadd, from kernel 6.18.
const STAT_USER = '3988 (cat) R 3983 3983 2781 0 -1 4194304 101 0 0 0 0 0 0 0 20 0 1 0 29881 3133440 386 '
  + '18446744073709551615 94624916758528 94624916778409 140730023498304 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 '
  + '94624916794416 94624916796032 94625247125504 140730023504608 140730023504628 140730023504628 140730023505899 0\n';
const STAT_KTHREAD = '2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 15 0 0 18446744073709551615 '
  + '0 0 0 0 0 0 0 2147483647 0 1 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n';

function runsOf(index: PageIndex): Array<[number, number]> {
  return Array.from({ length: index.runCount }, (_, i): [number, number] => [index.starts[i], index.runEnd(i)]);
}

function indexOfPages(addresses: number[]): PageIndex {
  const builder = new PageIndexBuilder();
  for (const address of [...addresses].sort((a, b) => a - b)) builder.add(address, address + PAGE_SIZE);
  return builder.build();
}

/** The fields maps prints, parsed without the code under test. */
function mapsLines(text: string) {
  return text.split('\n').filter((line) => line !== '').map((line) => {
    const [range, perms, offset, dev, inode] = line.split(' ', 5);
    const [start, end] = range.split('-');
    const name = line.split(' ').slice(5).join(' ').replace(/^ +/, '');
    return { start: BigInt(`0x${start}`), end: BigInt(`0x${end}`), perms, offset: BigInt(`0x${offset}`), dev, inode, name };
  });
}

function vmaAsMapsLine(vma: Vma) {
  const perms = `${vma.read ? 'r' : '-'}${vma.write ? 'w' : '-'}${vma.exec ? 'x' : '-'}${vma.mayShare ? 's' : 'p'}`;
  return {
    start: BigInt(vma.start), end: BigInt(vma.end), perms, offset: BigInt(vma.offset),
    dev: vma.dev, inode: String(vma.inode), name: vma.name,
  };
}

// ---- parseSmaps ----

test('parseSmaps reads every header field, names with spaces and (deleted), and VmFlags', (t) => {
  const vmas = parseSmaps(SMAPS_FIXTURE);
  t.is(vmas.length, MAPS_FIXTURE.length);
  t.deepEqual(vmas[0], {
    start: 0x559518a4a000, end: 0x559518a4c000, read: true, write: false, exec: false, mayShare: false,
    offset: 0, dev: 'fe:00', inode: 260131, name: '/usr/bin/cat', vmFlags: new Set(['rd', 'mr', 'mw', 'me']),
  });
  t.is(vmas[1].offset, 0x2000);
  t.true(vmas[1].exec);
  t.is(vmas[2].name, '[heap]');
  t.true(vmas[3].mayShare);
  t.is(vmas[3].name, '/memfd:ring buffer (deleted)');
  t.true(vmas[3].vmFlags.has('sh'));
  t.is(vmas[4].name, '/home/u/my lib (2).so');
  t.is(vmas[5].name, '/tmp/gone (deleted)');
  t.is(vmas[6].name, '');
  t.is(vmas[6].inode, 0);
  t.is(vmas[7].name, '[anon:worker pool]');
  t.deepEqual([...vmas[9].vmFlags], ['rd', 'mr', 'pf', 'io', 'de', 'dd']);
  t.is(vmas[10].name, '[vsyscall]');
  t.is(vmas[10].start, 0xffffffffff600000);
  t.is(vmas[10].end - vmas[10].start, PAGE_SIZE);
  t.deepEqual([...vmas[10].vmFlags], ['ex']);
});

test('parseSmaps accepts plain maps text, with empty vmFlags', (t) => {
  const fromMaps = parseSmaps(MAPS_TEXT);
  const fromSmaps = parseSmaps(SMAPS_FIXTURE);
  t.deepEqual(fromMaps, fromSmaps.map((vma) => ({ ...vma, vmFlags: new Set<string>() })));
});

test('parseSmaps of empty text is no mappings', (t) => {
  t.deepEqual(parseSmaps(''), []);
});

test('parseSmaps keeps a trailing space of a name but not the padding before it', (t) => {
  const [vma] = parseSmaps('7f3346001000-7f3346003000 r--p 00000000 fe:00 99                         /tmp/ends in space \n');
  t.is(vma.name, '/tmp/ends in space ');
});

const MALFORMED_SMAPS: Array<[string, string, number]> = [
  ['a field before any mapping', 'Size:                  8 kB\n', 1],
  ['a garbage line', `${MAPS_FIXTURE[0]}\nnot a line\n`, 2],
  ['an empty line in the middle', `${MAPS_FIXTURE[0]}\n\n${MAPS_FIXTURE[1]}\n`, 2],
  ['bad permissions', '559518a4a000-559518a4c000 rq-p 00000000 fe:00 260131 /usr/bin/cat\n', 1],
  ['an unaligned address', '559518a4a001-559518a4c000 r--p 00000000 fe:00 260131 /usr/bin/cat\n', 1],
  ['an empty range', '559518a4c000-559518a4c000 r--p 00000000 fe:00 260131 /usr/bin/cat\n', 1],
  ['overlapping mappings', `${MAPS_FIXTURE[1]}\n${MAPS_FIXTURE[0]}\n`, 2],
  ['a 17-digit address', '10000000000000000-10000000000001000 r--p 00000000 fe:00 1 x\n', 1],
  ['a bad VmFlags mnemonic', `${MAPS_FIXTURE[0]}\nVmFlags: rd wrx\n`, 2],
  ['a field without a value', `${MAPS_FIXTURE[0]}\nSize:\n`, 2],
];

for (const [what, text, line] of MALFORMED_SMAPS) {
  test(`parseSmaps throws ProcParseError on ${what}`, (t) => {
    const error = t.throws(() => parseSmaps(text), { instanceOf: ProcParseError });
    t.is(error?.line, line);
    t.regex(error?.message ?? '', new RegExp(`^smaps line ${line}: expected `));
  });
}

// ---- parseStat ----

test('mountedDevice gives the topmost mount on a path, as maps prints devices, with mountinfo escapes', (t) => {
  const mountinfo = [
    '22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw',
    '36 22 0:47 / /mnt/img rw,nosuid,nodev,relatime shared:2 - fuse.imgfs imgfs rw,user_id=0,group_id=0',
    '37 36 0:312 / /mnt/img rw,relatime shared:3 - fuse.imgfs imgfs rw',
    '38 22 0:48 / /tmp/with\\040space rw - tmpfs tmpfs rw',
    '',
  ].join('\n');
  t.is(mountedDevice('/mnt/img', mountinfo), '00:138', 'the later of two stacked mounts');
  t.is(mountedDevice('/', mountinfo), 'fe:01');
  t.is(mountedDevice('/tmp/with space', mountinfo), '00:30');
  t.is(mountedDevice('/mnt', mountinfo), undefined);
  t.is(mountedDevice('/mnt/img', 'garbage\n\n1 2 x / /mnt/img rw'), undefined);
});

test('mountedDevice of / is the device stat gives for /, in maps\' form', (t) => {
  const dev = fs.statSync('/').dev;
  const [major, minor] = [(dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00)];
  t.is(mountedDevice('/'), `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}`);
});

test('parseStat reads the fields of a user process', (t) => {
  const stat = parseStat(STAT_USER);
  t.deepEqual(stat, {
    pid: 3988, comm: 'cat', state: 'R', ppid: 3983, pgrp: 3983, session: 2781, ttyNr: 0, tpgid: -1, flags: 4194304,
    utime: 0, stime: 0, cutime: 0, cstime: 0, nice: 0, numThreads: 1, startTime: 29881,
    startCode: 94624916758528, endCode: 94624916778409, startStack: 140730023498304,
    startData: 94624916794416, endData: 94624916796032, startBrk: 94625247125504,
    argStart: 140730023504608, argEnd: 140730023504628, envStart: 140730023504628, envEnd: 140730023505899,
    exitCode: 0,
  });
  t.false(isKernelThread(stat));
});

test('parseStat splits comm at the last ")"', (t) => {
  const stat = parseStat(STAT_USER.replace('(cat)', '(a) (b) c)'));
  t.is(stat.comm, 'a) (b) c');
  t.is(stat.state, 'R');
  t.is(stat.ppid, 3983);
  t.is(parseStat(STAT_USER.replace('(cat)', '(two\nlines)')).comm, 'two\nlines');
  t.is(parseStat(STAT_USER.replace('(cat)', '()')).comm, '');
});

test('parseStat recognises a kernel thread', (t) => {
  const stat = parseStat(STAT_KTHREAD);
  t.is(stat.comm, 'kthreadd');
  t.is(stat.ppid, 0);
  t.is(stat.startCode, 0);
  t.true(isKernelThread(stat));
});

test('parseStat accepts fields a later kernel may append', (t) => {
  t.is(parseStat(STAT_USER.replace('\n', ' 7 8\n')).exitCode, 0);
});

const MALFORMED_STAT: Array<[string, string]> = [
  ['no comm', '3988 cat R 3983\n'],
  ['a non-numeric pid', STAT_USER.replace('3988 ', 'x ')],
  ['a missing field', STAT_USER.replace(/ 0\n$/, '\n')],
  ['a non-integer field', STAT_USER.replace(' 29881 ', ' 29x81 ')],
  ['a two-letter state', STAT_USER.replace(' R ', ' RR ')],
  ['a doubled space', STAT_USER.replace(' 3983 ', '  3983 ')],
  ['no space after comm', STAT_USER.replace(') R', ')R')],
];

for (const [what, text] of MALFORMED_STAT) {
  test(`parseStat throws ProcParseError on ${what}`, (t) => {
    t.throws(() => parseStat(text), { instanceOf: ProcParseError, message: /^stat line 1: expected / });
  });
}

// ---- against live processes ----

test('readStat of a missing pid throws the fs ENOENT error', (t) => {
  const pidMax = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  t.throws(() => readStat(pidMax + 1), { code: 'ENOENT' });
});

test('readStat of this process and of kthreadd', (t) => {
  const self = readStat(process.pid);
  t.is(self.pid, process.pid);
  t.is(self.ppid, process.ppid);
  t.false(isKernelThread(self));
  t.true(self.numThreads >= 1);
  t.true(self.startCode > 0 && self.startCode < self.endCode);

  const kthreadd = readStat(2);
  if (kthreadd.comm !== 'kthreadd') return t.log('pid 2 is not kthreadd here (a pid namespace?)');
  t.true(isKernelThread(kthreadd));
});

// Page indices touched in a 64 GiB reservation: a run of three, loners across the whole span.
const SPARSE_BYTES = 64 * GIB;
const SPARSE_PAGES = [0, 1, 2, 100, GIB / PAGE_SIZE + 5, 32 * GIB / PAGE_SIZE, SPARSE_BYTES / PAGE_SIZE - 1];

async function startSparse(t: Parameters<typeof startTarget>[0]) {
  const target = await startTarget(t, 'proc_sparse', [String(SPARSE_BYTES), ...SPARSE_PAGES.map(String)]);
  const [, baseHex, bytes, ...path] = target.info;
  t.is(Number(bytes), SPARSE_BYTES);
  return { pid: target.pid, base: parseInt(baseHex, 16), deletedPath: path.join(' ') };
}

test('scanPages finds exactly the touched pages of a sparse 64 GiB reservation, by both methods', async (t) => {
  const { pid, base } = await startSparse(t);
  const expected = runsOf(indexOfPages(SPARSE_PAGES.map((page) => base + page * PAGE_SIZE)));
  const ranges: Array<[number, number]> = [[base, base + SPARSE_BYTES]];

  const index = scanPages(pid, ranges);
  t.deepEqual(runsOf(index), expected);
  t.is(index.totalPages, SPARSE_PAGES.length);
  t.deepEqual(runsOf(scanPagesWithIoctl(pid, ranges)), expected);
  t.deepEqual(runsOf(scanPagesWithPagemap(pid, ranges)), expected);
});

test('scanPages keeps to the given ranges, also inside one mapping', async (t) => {
  const { pid, base } = await startSparse(t);
  const page = (n: number) => base + n * PAGE_SIZE;
  // Cuts through the run 0..2 and excludes page 100 and the last page.
  const ranges: Array<[number, number]> = [[page(1), page(2)], [page(50), page(100)], [page(101), base + 40 * GIB]];
  const expected = runsOf(indexOfPages([page(1), page(GIB / PAGE_SIZE + 5), page(32 * GIB / PAGE_SIZE)]));
  t.deepEqual(runsOf(scanPagesWithIoctl(pid, ranges)), expected);
  t.deepEqual(runsOf(scanPagesWithPagemap(pid, ranges)), expected);

  // Touching ranges (a mapping split into many VMAs) are walked as one span, with the same result.
  const touching: Array<[number, number]> = [[page(0), page(1)], [page(1), page(2)], [page(2), page(3)], [page(3), page(101)], [page(102), page(103)]];
  const touched = runsOf(indexOfPages([page(0), page(1), page(2), page(100)]));
  t.deepEqual(runsOf(scanPagesWithIoctl(pid, touching)), touched);
  t.deepEqual(runsOf(scanPagesWithPagemap(pid, touching)), touched);
  for (const bad of [[[page(1), page(3)], [page(2), page(4)]], [[page(1), page(1)]], [[page(1) + 8, page(2)]]] as Array<Array<[number, number]>>) {
    t.throws(() => scanPagesWithIoctl(pid, bad), { instanceOf: RangeError });
    t.throws(() => scanPagesWithPagemap(pid, bad), { instanceOf: RangeError });
  }
});

test('rangesWithPages tells which ranges hold a page, asked one by one or scanned whole when they touch', async (t) => {
  const { pid, base } = await startSparse(t);
  const page = (n: number) => base + n * PAGE_SIZE;
  const present = PRESENT_OR_SWAPPED;
  // Touching and small (one scan of them all), then apart (one call each), then touching but
  // spanning far more than a whole scan is allowed (one call each): pages 0..2, 100 and GIB+5.
  const small: Array<[number, number]> = [[page(0), page(1)], [page(1), page(50)], [page(50), page(100)], [page(100), page(101)]];
  const apart: Array<[number, number]> = [[page(102), page(103)], [page(200), page(300)]];
  const large: Array<[number, number]> = [[page(400), page(GIB / PAGE_SIZE)], [page(GIB / PAGE_SIZE), page(GIB / PAGE_SIZE + 6)]];
  t.deepEqual(rangesWithPages(pid, [...small, ...apart, ...large], present), [true, true, false, true, false, false, false, true]);
  t.throws(() => rangesWithPages(pid, [[page(1), page(3)], [page(2), page(4)]], present), { instanceOf: RangeError });
});

test('readStat of a live target whose comm holds ") ("', async (t) => {
  const { pid } = await startSparse(t);
  const stat = readStat(pid);
  t.is(stat.pid, pid);
  t.is(stat.comm, 'sp) (x y)');
  t.is(stat.ppid, process.pid);
  t.is(stat.numThreads, 1);
  t.true(stat.startBrk > 0 && stat.argStart < stat.argEnd && stat.envStart < stat.envEnd);
});

test('readSmaps lists what /proc/<pid>/maps lists, with VmFlags', async (t) => {
  const { pid, base, deletedPath } = await startSparse(t);
  const vmas = readSmaps(pid);
  const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  t.deepEqual(vmas.map(vmaAsMapsLine), mapsLines(maps));
  t.deepEqual(parseSmaps(maps), vmas.map((vma) => ({ ...vma, vmFlags: new Set<string>() })));

  t.true(vmas.every((vma) => vma.vmFlags.size > 0));
  const reservation = vmas.find((vma) => vma.start === base);
  t.is(reservation?.end, base + SPARSE_BYTES);
  t.true(reservation?.vmFlags.has('nh'), 'MADV_NOHUGEPAGE shows as nh');
  const deleted = vmas.find((vma) => vma.name === `${deletedPath} (deleted)`);
  t.truthy(deleted, `a mapping named "${deletedPath} (deleted)"`);
  t.true(deleted?.mayShare);
  t.is(vmas.at(-1)?.name, '[vsyscall]');
});

test('both scan methods agree on every mapping of a live process except VM_PFNMAP ones', async (t) => {
  const { pid } = await startSparse(t);
  // PAGEMAP_SCAN skips VM_PFNMAP mappings ([vvar]), whose ptes the pagemap file reports present.
  const ranges = readSmaps(pid)
    .filter((vma) => vma.name !== '[vsyscall]' && !vma.vmFlags.has('pf'))
    .map((vma): [number, number] => [vma.start, vma.end]);
  const byIoctl = scanPagesWithIoctl(pid, ranges);
  t.deepEqual(runsOf(scanPagesWithPagemap(pid, ranges)), runsOf(byIoctl));
  t.true(byIoctl.totalPages > SPARSE_PAGES.length);
});

// One PAGEMAP_SCAN call returns at most 4096 regions: 48 MiB fills exactly one vec, 64 MiB needs two calls.
for (const mib of [48, 64]) {
  test(`both scan methods return exactly every 3rd page of a ${mib} MiB region`, async (t) => {
    const bytes = mib * MIB;
    const target = await startTarget(t, 'proc_stride', [String(bytes), '3']);
    const base = parseInt(target.info[1], 16);
    const touched: number[] = [];
    for (let page = 0; page < bytes / PAGE_SIZE; page += 3) touched.push(base + page * PAGE_SIZE);
    const expected = runsOf(indexOfPages(touched));

    t.deepEqual(runsOf(scanPagesWithIoctl(target.pid, [[base, base + bytes]])), expected);
    t.deepEqual(runsOf(scanPagesWithPagemap(target.pid, [[base, base + bytes]])), expected);
  });
}

test('scanPages rejects ranges that are unaligned, empty, or out of order', (t) => {
  for (const ranges of [[[4096, 4097]], [[8192, 8192]], [[8192, 12288], [4096, 8192]], [[4096, 12288], [8192, 16384]]]) {
    t.throws(() => scanPages(process.pid, ranges as Array<[number, number]>), { instanceOf: RangeError });
  }
});

test('scanPages of a missing pid throws the fs ENOENT error', (t) => {
  const pidMax = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  t.throws(() => scanPages(pidMax + 1, [[4096, 8192]]), { code: 'ENOENT' });
});

test('scan timings on a fully touched 1 GiB region (informational)', async (t) => {
  const bytes = GIB;
  const target = await startTarget(t, 'proc_stride', [String(bytes), '1']);
  const base = parseInt(target.info[1], 16);
  const ranges: Array<[number, number]> = [[base, base + bytes]];

  let started = performance.now();
  const byIoctl = scanPagesWithIoctl(target.pid, ranges);
  const ioctlMs = performance.now() - started;
  started = performance.now();
  const byPagemap = scanPagesWithPagemap(target.pid, ranges);
  const pagemapMs = performance.now() - started;

  t.log(`1 GiB, ${byIoctl.totalPages} pages: PAGEMAP_SCAN ${ioctlMs.toFixed(1)} ms, pagemap read ${pagemapMs.toFixed(1)} ms`);
  t.deepEqual(runsOf(byIoctl), [[base, base + bytes]]);
  t.deepEqual(runsOf(byPagemap), runsOf(byIoctl));
});

test('status fields: the text of a line, its first number, a mask; missing lines', (t) => {
  const status = 'Name:\tmy prog\nState:\tS (sleeping)\nTgid:\t4242\nUid:\t1000\t1001\t1002\t1003\nGroups:\t\nSigCgt:\t0000000180004a03\nNoNewPrivs:\t1\n';
  t.is(statusField(status, 'Name'), 'my prog');
  t.is(statusField(status, 'State'), 'S (sleeping)');
  t.is(statusField(status, 'Groups'), '');
  t.is(statusField(status, 'Umask'), undefined);
  t.is(statusNumber(status, 'Tgid'), 4242);
  t.is(statusNumber(status, 'Uid'), 1000, 'the first of the four');
  t.is(statusNumber(status, 'TracerPid'), 0, 'missing');
  t.is(statusNumber(status, 'Name'), 0, 'not a number');
  t.is(statusMask(status, 'SigCgt'), 0x180004a03n);
  t.is(statusMask(status, 'SigPnd'), 0n, 'missing');
  t.is(statusField(`${status}Tgid2:\t7\n`, 'Tgid'), '4242', 'a field whose name another starts with is not it');
});

test('parsePasswdGroups: uid to primary gid, the first entry of a uid, malformed lines skipped', (t) => {
  const passwd = [
    'root:x:0:0:root:/root:/bin/bash',
    'alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash',
    'alias:x:1000:50::/home/alias:/bin/sh',
    'nogid:x:1001::x:/:/bin/false',
    'short:x:1002',
    'word:x:abc:7::/:/bin/false',
    '',
    '+::::::',
    'bob:x:1003:100:',
  ].join('\n');
  t.deepEqual([...parsePasswdGroups(passwd)], [[0, 0], [1000, 1000], [1003, 100]]);
});
