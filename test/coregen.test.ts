// Unit tests of the core layout: vma_dump_size's decisions over synthetic VMAs and filters, and
// the ELF header, program header and note offsets of a synthetic snapshot, read back with an
// independent little parser.

import test from 'ava';
import {
  coreLayout, coreNotes, coreSize, DUMP_ANON_PRIVATE, DUMP_ANON_SHARED, DUMP_ELF_HEADERS, DUMP_HUGETLB_PRIVATE,
  DUMP_HUGETLB_SHARED, DUMP_MAPPED_PRIVATE, DUMP_MAPPED_SHARED, vmaDumpSize,
} from '../src/coregen.js';
import { encodePrPsinfo } from '../src/elfnotes.js';
import type { PageSource } from '../src/extents.js';
import { loads, parseElfCore } from './helpers/elfcore.js';
import { USER_REGS_ORDER, type CoreInfo, type MappedFile, type Snapshot, type ThreadState, type UserRegs, type Vma, type VmaFacts } from '../src/model.js';
import { PageIndexBuilder } from '../src/pageindex.js';

const PAGE = 4096;
const DEFAULT_FILTER = 0x33;
const ALL = 0x7f;

function vma(start: number, pages: number, perms: string, name = '', extra: Partial<Vma> = {}, flags: string[] = []): Vma {
  return {
    start, end: start + pages * PAGE, read: perms[0] === 'r', write: perms[1] === 'w', exec: perms[2] === 'x',
    mayShare: perms[3] === 's', offset: 0, dev: '00:00', inode: 0, name, vmFlags: new Set(flags), ...extra,
  };
}

const file = (links = 1, executable = false, size: number | null = 1 << 30): MappedFile => ({ links, executable, size });
const facts = (f: Partial<VmaFacts> = {}): VmaFacts => ({ anonymous: false, startsWithElf: false, file: null, ...f });
const onDisk = { dev: 'fe:00', inode: 1234 };

interface Row {
  what: string;
  vma: Vma;
  facts: VmaFacts;
  /** Expected dump size per filter value. */
  expect: Array<[number, number]>;
}

const W = 4 * PAGE; // every table VMA is 4 pages
const rows: Row[] = [
  { what: 'written anonymous private memory', vma: vma(0x10000, 4, 'rw-p'), facts: facts({ anonymous: true }),
    expect: [[DEFAULT_FILTER, W], [DUMP_ANON_PRIVATE, W], [ALL & ~DUMP_ANON_PRIVATE, 0], [0, 0]] },
  { what: 'never written anonymous memory (no anon_vma)', vma: vma(0x10000, 4, 'rw-p'), facts: facts(),
    expect: [[DEFAULT_FILTER, 0], [ALL, 0]] },
  { what: '[heap]', vma: vma(0x10000, 4, 'rw-p', '[heap]'), facts: facts({ anonymous: true }),
    expect: [[DEFAULT_FILTER, W], [0, 0]] },
  { what: 'a guard page', vma: vma(0x10000, 4, '---p'), facts: facts(), expect: [[ALL, 0]] },
  { what: '[vdso]', vma: vma(0x10000, 4, 'r-xp', '[vdso]', {}, ['rd', 'ex', 'mr', 'mw', 'me', 'de']), facts: facts(),
    expect: [[0, W], [DEFAULT_FILTER, W]] },
  { what: '[vvar] (always dumped, though VM_DONTDUMP | VM_IO)', vma: vma(0x10000, 4, 'r--p', '[vvar]', {}, ['rd', 'io', 'pf', 'dd']),
    facts: facts(), expect: [[0, W], [ALL, W]] },
  { what: '[vsyscall]', vma: vma(0x10000, 4, '--xp', '[vsyscall]'), facts: facts(), expect: [[0, W]] },
  { what: 'MADV_DONTDUMP memory', vma: vma(0x10000, 4, 'rw-p', '', {}, ['rd', 'wr', 'dd']), facts: facts({ anonymous: true }),
    expect: [[ALL, 0]] },
  { what: 'named anonymous memory', vma: vma(0x10000, 4, 'rw-p', '[anon:arena]'), facts: facts({ anonymous: true }),
    expect: [[DEFAULT_FILTER, W], [0, 0]] },
  { what: 'private hugetlb', vma: vma(0x10000, 4, 'rw-p', '/anon_hugepage (deleted)', onDisk, ['ht']),
    facts: facts({ anonymous: true, file: file(0) }),
    expect: [[DUMP_HUGETLB_PRIVATE, W], [ALL & ~DUMP_HUGETLB_PRIVATE, 0]] },
  { what: 'shared hugetlb', vma: vma(0x10000, 4, 'rw-s', '/SYSV00000000 (deleted)', onDisk, ['sh', 'ht']),
    facts: facts({ file: file(0) }), expect: [[DUMP_HUGETLB_SHARED, W], [ALL & ~DUMP_HUGETLB_SHARED, 0]] },
  { what: 'a VM_IO mapping', vma: vma(0x10000, 4, 'rw-s', '/dev/mem', onDisk, ['sh', 'io', 'pf']),
    facts: facts({ file: file(1) }), expect: [[ALL, 0]] },
  { what: 'shared anonymous memory (an unlinked shmem file)', vma: vma(0x10000, 4, 'rw-s', '/dev/zero (deleted)', onDisk, ['sh']),
    facts: facts({ file: file(0) }), expect: [[DEFAULT_FILTER, W], [DUMP_ANON_SHARED, W], [ALL & ~DUMP_ANON_SHARED, 0]] },
  { what: 'a shared file mapping', vma: vma(0x10000, 4, 'rw-s', '/data', onDisk, ['sh']),
    facts: facts({ file: file(1) }), expect: [[DEFAULT_FILTER, 0], [DUMP_MAPPED_SHARED, W], [ALL & ~DUMP_MAPPED_SHARED, 0]] },
  { what: 'a MAP_SHARED mapping of a read-only file (VM_MAYSHARE without VM_SHARED)',
    vma: vma(0x10000, 4, 'r--s', '/data', { ...onDisk, offset: PAGE }), facts: facts({ file: file(1) }),
    expect: [[DEFAULT_FILTER, 0], [DUMP_MAPPED_SHARED, 0], [DUMP_MAPPED_PRIVATE, W]] },
  { what: 'a written private file mapping', vma: vma(0x10000, 4, 'rw-p', '/lib.so', { ...onDisk, offset: 2 * PAGE }),
    facts: facts({ anonymous: true, file: file(1) }),
    expect: [[DEFAULT_FILTER, W], [DUMP_ANON_PRIVATE, W], [DUMP_MAPPED_PRIVATE, W], [DUMP_ELF_HEADERS, 0]] },
  { what: 'the first mapping of an executable file', vma: vma(0x10000, 4, 'r--p', '/bin/x', onDisk),
    facts: facts({ file: file(1, true) }),
    expect: [[DEFAULT_FILTER, PAGE], [DUMP_ELF_HEADERS, PAGE], [DUMP_MAPPED_PRIVATE, W], [DUMP_ANON_PRIVATE, 0]] },
  { what: 'the first mapping of a non-executable ELF library', vma: vma(0x10000, 4, 'r--p', '/lib.so', onDisk),
    facts: facts({ startsWithElf: true, file: file(1) }), expect: [[DEFAULT_FILTER, PAGE], [DUMP_ANON_PRIVATE, 0]] },
  { what: 'the first mapping of a non-ELF, non-executable file', vma: vma(0x10000, 4, 'r--p', '/data', onDisk),
    facts: facts({ file: file(1) }), expect: [[DEFAULT_FILTER, 0], [ALL & ~DUMP_MAPPED_PRIVATE, 0]] },
  { what: 'an executable file mapped from offset > 0', vma: vma(0x10000, 4, 'r-xp', '/bin/x', { ...onDisk, offset: PAGE }),
    facts: facts({ file: file(1, true) }), expect: [[DEFAULT_FILTER, 0]] },
  { what: 'an unreadable executable file mapping at offset 0', vma: vma(0x10000, 4, '---p', '/bin/x', onDisk),
    facts: facts({ file: file(1, true) }), expect: [[DEFAULT_FILTER, 0]] },
];

for (const row of rows) {
  test(`vma_dump_size: ${row.what}`, (t) => {
    for (const [filter, size] of row.expect) {
      t.is(vmaDumpSize(row.vma, row.facts, filter), size, `coredump_filter 0x${filter.toString(16)}`);
    }
  });
}

// A synthetic snapshot: two threads; an ELF executable, a file mapping reaching past its file's
// end with a guard page in it, anonymous memory with two touched pages, a never written mapping, [vvar], [vdso], and the
// unreadable [vsyscall] gate.

const zeroRegs = (): UserRegs => Object.fromEntries(USER_REGS_ORDER.map((name) => [name, 0n])) as unknown as UserRegs;

const EXE = 0x400000;
const DATA = 0x500000;
const ANON = 0x600000;
const UNTOUCHED = 0x700000;
const VVAR = 0x7f0000000000;
const VDSO = 0x7f0000004000;
const GATE = 0xffffffffff600000;
const XSTATE_SIZE = 2440;

function syntheticSnapshot(vmaCountPadding = 0): Snapshot {
  const vmas: Vma[] = [
    vma(EXE, 2, 'r--p', '/bin/exe', onDisk),
    vma(DATA, 4, 'rw-p', '/data\\012file', { ...onDisk, inode: 99, offset: PAGE }),
    vma(ANON, 8, 'rw-p'),
    vma(UNTOUCHED, 4, 'rw-p'),
    vma(VVAR, 4, 'r--p', '[vvar]', {}, ['rd', 'io', 'pf', 'dd']),
    vma(VDSO, 2, 'r-xp', '[vdso]'),
  ];
  const vmaFacts: VmaFacts[] = [
    facts({ file: file(1, true) }),
    // 2.5 pages of the file from the mapping's offset: the last page and a half are past its end.
    facts({ anonymous: true, file: file(1, false, PAGE + 2.5 * PAGE) }),
    facts({ anonymous: true }),
    facts(),
    facts(),
    facts(),
  ];
  // Guard pages between the untouched mapping and [vvar], to reach extended numbering.
  const padding = Array.from({ length: vmaCountPadding }, (_, i) => vma(0x10_0000_0000 + i * 2 * PAGE, 1, '---p'));
  vmas.splice(4, 0, ...padding);
  vmaFacts.splice(4, 0, ...padding.map(() => facts()));
  const builder = new PageIndexBuilder();
  builder.add(ANON + PAGE, ANON + 2 * PAGE);
  builder.add(ANON + 5 * PAGE, ANON + 6 * PAGE);
  const threads: ThreadState[] = [100, 101].map((tid) => ({ tid, regs: { ...zeroRegs(), rip: BigInt(0x401000 + tid) }, tls: [] }));
  const siginfo = Buffer.alloc(128);
  siginfo.writeInt32LE(19, 0);
  const core: CoreInfo = {
    filter: DEFAULT_FILTER,
    vmas,
    vmaFacts,
    gate: vma(GATE, 1, '--xp', '[vsyscall]'),
    // In a pid namespace: the notes carry the ids the process has there, not the snapshot's tids.
    process: {
      pid: 7, ppid: 1, pgrp: 7, sid: 3, state: 'S', nice: -5, flags: 0x400000, uid: 1000, gid: 1001, comm: 'exe',
      args: Buffer.from('./exe --flag '), cutime: 250, cstime: 3,
    },
    siginfo,
    auxv: Buffer.alloc(16 * 3, 7),
    threads: [100, 101].map((tid) => ({
      tid, ownTid: tid - 93, sigPending: 0x100n, sigBlocked: 0x4000n, signalMask: 0x4000n, utime: 123, stime: 45,
      fpregs: Buffer.alloc(512, tid), xstate: Buffer.alloc(XSTATE_SIZE, tid),
    })),
    xsaveLayout: Buffer.alloc(32, 1),
  };
  return {
    pid: 100, startTime: 1, threads, core, vmas,
    mm: {
      flags: 0n, defFlags: 0n, startCode: 0, endCode: 0, startData: 0, endData: 0, startBrk: 0, brk: 0, startStack: 0,
      argStart: 0, argEnd: 0, envStart: 0, envEnd: 0,
    },
    pages: builder.build(),
    restore: { exe: '/bin/exe', cwd: '/', brk: 0, auxv: core.auxv, threads: [], files: [], sigactions: [], fds: [], guardPages: [[DATA + PAGE, DATA + 2 * PAGE]] },
  };
}

/** A page source that fills each range with its own address's low byte, and records the ranges. */
class FakeMemory implements PageSource {
  ranges: Array<[number, number]> = [];
  private out: Buffer = Buffer.alloc(0);
  begin(out: Buffer): void {
    this.out = out;
  }
  add(outOffset: number, vaddr: number, length: number): void {
    this.ranges.push([vaddr, vaddr + length]);
    for (let i = 0; i < length; i++) this.out[outOffset + i] = ((vaddr + i) / PAGE) & 0xff || 0xee;
  }
  commit(): void {}
}

function readAll(snapshot: Snapshot, memory = new FakeMemory()): Buffer {
  const layout = coreLayout(snapshot);
  const out = Buffer.alloc(layout.size);
  layout.read(out, layout.size, 0, memory);
  return out;
}

test('ELF header: ET_CORE, EM_X86_64, program headers right after it', (t) => {
  const file = readAll(syntheticSnapshot());
  t.is(file.toString('latin1', 0, 4), '\x7fELF');
  t.deepEqual([...file.subarray(4, 7)], [2, 1, 1]); // ELFCLASS64, little-endian, EV_CURRENT
  t.is(file.readUInt16LE(16), 4);
  t.is(file.readUInt16LE(18), 62);
  t.is(Number(file.readBigUInt64LE(32)), 64);
  t.is(file.readUInt16LE(52), 64);
  t.is(file.readUInt16LE(54), 56);
  t.is(file.readUInt16LE(56), 1 + 6 + 1); // PT_NOTE, the VMAs, the gate
  t.is(Number(file.readBigUInt64LE(40)), 0);
});

test('program headers: PT_NOTE first, then one PT_LOAD per VMA in address order, page-aligned data', (t) => {
  const snapshot = syntheticSnapshot();
  const file = readAll(snapshot);
  const { phdrs } = parseElfCore(file);
  const note = phdrs[0];
  t.like(note, { type: 4, flags: 0, offset: 64 + 56 * 8, vaddr: 0n, memsz: 0, align: 4 });
  const notesEnd = note.offset + note.filesz;
  const loads = phdrs.slice(1);
  t.true(loads.every((p) => p.type === 1 && p.align === PAGE));
  t.deepEqual(loads.map((p) => p.vaddr), [EXE, DATA, ANON, UNTOUCHED, VVAR, VDSO].map(BigInt).concat([0xffffffffff600000n]));
  t.deepEqual(loads.map((p) => p.memsz), [2, 4, 8, 4, 4, 2, 1].map((n) => n * PAGE));
  t.deepEqual(loads.map((p) => p.filesz), [1, 4, 8, 0, 4, 2, 1].map((n) => n * PAGE));
  t.deepEqual(loads.map((p) => p.flags), [4, 6, 6, 6, 4, 5, 1]);
  t.is(loads[0].offset, Math.ceil(notesEnd / PAGE) * PAGE);
  for (let i = 1; i < loads.length; i++) t.is(loads[i].offset, loads[i - 1].offset + loads[i - 1].filesz);
  t.is(file.length, loads[6].offset + loads[6].filesz);
  t.true(file.subarray(notesEnd, loads[0].offset).every((b) => b === 0), 'zeros up to the first page');
});

test('the size arithmetic of a preview equals the layout', (t) => {
  const snapshot = syntheticSnapshot();
  const size = coreSize({
    vmas: snapshot.vmas, core: snapshot.core, threadCount: 2, xstateSize: XSTATE_SIZE, auxvSize: 48, xsaveLayoutSize: 32,
  });
  t.is(size, coreLayout(snapshot).size);
});

test('notes come in the kernel order with their sizes and fields', (t) => {
  const snapshot = syntheticSnapshot();
  const file = readAll(snapshot);
  const { notes } = parseElfCore(file);
  t.deepEqual(notes.map((n) => `${n.name}:${n.type.toString(16)}:${n.desc.length}`), [
    'CORE:1:336', 'CORE:3:136', 'CORE:53494749:128', 'CORE:6:48', `CORE:46494c45:${16 + 2 * 24 + 9 + 11}`,
    'CORE:2:512', `LINUX:202:${XSTATE_SIZE}`,
    'CORE:1:336', 'CORE:2:512', `LINUX:202:${XSTATE_SIZE}`,
    'LINUX:205:32',
  ]);
  t.deepEqual(notes.map((n) => n.desc), coreNotes(snapshot).map((n) => n.desc));

  const [leader, psinfo, siginfo, , files, fpregs, xstate, other] = notes.map((n) => n.desc);
  t.is(leader.readInt32LE(0), 19, 'si_signo');
  t.is(leader.readInt16LE(12), 19, 'pr_cursig');
  t.is(leader.readBigUInt64LE(16), 0x100n);
  t.is(leader.readBigUInt64LE(24), 0x4000n);
  t.deepEqual([32, 36, 40, 44].map((o) => leader.readInt32LE(o)), [7, 1, 7, 3], 'ids in its pid namespace');
  t.deepEqual([48, 56, 64, 72, 80, 88].map((o) => Number(leader.readBigInt64LE(o))), [1, 230000, 0, 450000, 2, 500000]);
  t.is(leader.readBigUInt64LE(112 + 16 * 8), 0x401000n + 100n, 'pr_reg rip');
  t.is(leader.readInt32LE(328), 1, 'pr_fpvalid');
  t.is(other.readInt32LE(32), 8);
  t.is(other.readBigUInt64LE(112 + 16 * 8), 0x401000n + 101n);

  t.deepEqual([...psinfo.subarray(0, 4)], [1, 'S'.charCodeAt(0), 0, 0xfb]);
  t.is(psinfo.readBigUInt64LE(8), 0x400000n);
  t.deepEqual([16, 20, 24, 28, 32, 36].map((o) => psinfo.readUInt32LE(o)), [1000, 1001, 7, 1, 7, 3]);
  t.is(psinfo.toString('latin1', 40, 44), 'exe\0');
  t.is(psinfo.toString('latin1', 56, 70), './exe --flag \0');
  t.is(siginfo.readInt32LE(0), 19);

  t.is(files.readBigUInt64LE(0), 2n, 'two file mappings');
  t.is(files.readBigUInt64LE(8), 4096n);
  t.deepEqual([16, 24, 32, 40, 48, 56].map((o) => Number(files.readBigUInt64LE(o))), [EXE, EXE + 2 * PAGE, 0, DATA, DATA + 4 * PAGE, 1]);
  t.is(files.toString('utf8', 64), '/bin/exe\0/data\nfile\0');
  t.true(fpregs.every((b) => b === 100));
  t.true(xstate.every((b) => b === 100));
});

test('memory: never touched anonymous pages, pages past EOF, guard pages, [vvar] and the gate are zeros the target never sees', (t) => {
  const snapshot = syntheticSnapshot();
  const memory = new FakeMemory();
  const file = readAll(snapshot, memory);
  const segments = loads(parseElfCore(file));
  t.deepEqual(memory.ranges, [
    [EXE, EXE + PAGE], // the ELF header page
    [DATA, DATA + PAGE], [DATA + 2 * PAGE, DATA + 3 * PAGE], // the file covers 2.5 of its 4 pages; a guard page
    [ANON + PAGE, ANON + 2 * PAGE], [ANON + 5 * PAGE, ANON + 6 * PAGE],
    [VDSO, VDSO + 2 * PAGE],
  ]);
  const bytesOf = (i: number) => file.subarray(segments[i].offset, segments[i].offset + segments[i].filesz);
  t.true(bytesOf(1).subarray(3 * PAGE).every((b) => b === 0), 'past the end of the file');
  t.true(bytesOf(1).subarray(PAGE, 2 * PAGE).every((b) => b === 0), 'a guard page');
  t.true(bytesOf(2).subarray(0, PAGE).every((b) => b === 0), 'an untouched anonymous page');
  t.true(bytesOf(2).subarray(PAGE, 2 * PAGE).every((b) => b === (((ANON + PAGE) / PAGE) & 0xff || 0xee)));
  t.true(bytesOf(4).every((b) => b === 0), '[vvar]');
  t.true(bytesOf(6).every((b) => b === 0), '[vsyscall]');
});

test('any slice of the layout equals the same bytes of a whole read', (t) => {
  const snapshot = syntheticSnapshot();
  const whole = readAll(snapshot);
  const layout = coreLayout(snapshot);
  for (const [pos, length] of [[0, 1], [63, 10], [1000, 5000], [whole.length - 3, 100], [4095, 8193]]) {
    const out = Buffer.alloc(length);
    const got = layout.read(out, length, pos, new FakeMemory());
    t.true(out.subarray(0, got).equals(whole.subarray(pos, pos + length)), `slice at ${pos}`);
  }
});

test('with PN_XNUM segments or more, e_phnum escapes and section header 0 holds the count', (t) => {
  const snapshot = syntheticSnapshot(0xffff - 8);
  const layout = coreLayout(snapshot);
  const file = readAll(snapshot);
  const segments = 1 + snapshot.vmas.length + 1;
  t.is(segments, 0xffff);
  t.is(file.readUInt16LE(56), 0xffff);
  t.is(file.readUInt16LE(58), 64);
  t.is(file.readUInt16LE(60), 1);
  const shoff = Number(file.readBigUInt64LE(40));
  t.is(shoff, layout.size - 64, 'after the memory');
  const shdr = file.subarray(shoff);
  t.is(parseElfCore(file).phdrs.length, segments);
  t.is(shdr.readUInt32LE(4), 0, 'SHT_NULL');
  t.is(shdr.readBigUInt64LE(32), 1n, 'sh_size = e_shnum');
  t.is(shdr.readUInt32LE(44), segments, 'sh_info');
  t.is(coreSize({ vmas: snapshot.vmas, core: snapshot.core, threadCount: 2, xstateSize: XSTATE_SIZE, auxvSize: 48, xsaveLayoutSize: 32 }), layout.size);
});

test('a snapshot without the XSAVE layout has no NT_X86_XSAVE_LAYOUT note', (t) => {
  const snapshot = syntheticSnapshot();
  snapshot.core.xsaveLayout = null;
  t.false(coreNotes(snapshot).some((n) => n.type === 0x205));
  t.is(coreSize({ vmas: snapshot.vmas, core: snapshot.core, threadCount: 2, xstateSize: XSTATE_SIZE, auxvSize: 48, xsaveLayoutSize: 0 }),
    coreLayout(snapshot).size);
});

test('encodePrPsinfo numbers a state as the kernel does ("RSDTZW"), a tracing stop as a stop, any other as "."', (t) => {
  const base = { nice: 0, flags: 0, uid: 0, gid: 0, pid: 1, ppid: 0, pgrp: 1, sid: 1, comm: 'x', args: Buffer.alloc(0) };
  const encoded = (state: string) => {
    const b = encodePrPsinfo({ ...base, state });
    return [b[0], String.fromCharCode(b[1]), b[2]];
  };
  t.deepEqual(['R', 'S', 'D', 'T', 't', 'Z', 'I', 'X'].map(encoded),
    [[0, 'R', 0], [1, 'S', 0], [2, 'D', 0], [3, 'T', 0], [3, 'T', 0], [4, 'Z', 1], [0, '.', 0], [0, '.', 0]]);
});
