import test from 'ava';
import {
  CKPT_X86_SEG_LDT, CKPT_X86_SEG_NULL, CKPT_X86_SEG_TLS, CKPT_X86_SEG_USER32_CS, CKPT_X86_SEG_USER32_DS,
  CKPT_X86_SEG_USER64_CS, CKPT_X86_SEG_USER64_DS, FormatError, HEADER_SIZE, MAP_ANONYMOUS, MAP_PRIVATE,
  MAP_SHARED, MM_SIZE, PAGE_RECORD_SIZE, REGS_SIZE, TRAILER_SIZE, VMA_SIZE, VMA_TERMINATOR, carriesPages,
  decodeMm, decodeRegs, decodeSegment, decodeVma, encodeHeader, encodeMm, encodeRegs, encodeSegment,
  encodeTls, encodeVma,
} from '../src/format.js';
import type { MmFields, UserDesc, UserRegs, Vma } from '../src/model.js';

function vma(over: Partial<Vma> = {}): Vma {
  return {
    start: 0x7f0000000000, end: 0x7f0000003000, read: true, write: true, exec: false, mayShare: false,
    offset: 0, dev: '00:00', inode: 0, name: '', vmFlags: new Set(['rd', 'wr', 'mr', 'mw', 'me', 'ac']),
    ...over,
  };
}

const EMPTY_DESC: UserDesc = {
  entryNumber: 13, baseAddr: 0, limit: 0, seg32bit: false, contents: 0, readExecOnly: true,
  limitInPages: false, segNotPresent: true, useable: false,
};

const TYPICAL_DESC: UserDesc = {
  entryNumber: 12, baseAddr: 0x12345678, limit: 0xfffff, seg32bit: true, contents: 0,
  readExecOnly: false, limitInPages: true, segNotPresent: false, useable: true,
};

/** Every register a distinct value, so a field written at the wrong offset shows. */
function sampleRegs(over: Partial<UserRegs> = {}): UserRegs {
  const names: (keyof UserRegs)[] = [
    'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi',
    'rdi', 'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
  ];
  const regs = Object.fromEntries(names.map((n, i) => [n, 0x1111_0000_0000_0000n + BigInt(i)])) as unknown as UserRegs;
  return { ...regs, cs: 0x33n, ss: 0x2bn, ds: 0n, es: 0n, fs: 0n, gs: 0n, ...over };
}

test('struct sizes', (t) => {
  t.is(HEADER_SIZE, 8);
  t.is(REGS_SIZE, 208);
  t.is(MM_SIZE, 112);
  t.is(VMA_SIZE, 40);
  t.is(PAGE_RECORD_SIZE, 4104);
  t.is(TRAILER_SIZE, 8);
  t.is(encodeHeader().length, HEADER_SIZE);
  t.is(encodeRegs(sampleRegs(), [EMPTY_DESC, EMPTY_DESC, EMPTY_DESC]).length, REGS_SIZE);
  t.is(VMA_TERMINATOR.length, VMA_SIZE);
  t.true(VMA_TERMINATOR.every((b) => b === 0));
});

test('header: magic then version', (t) => {
  const h = encodeHeader();
  t.is(h.readUInt32LE(0), 0xa75b8d43);
  t.is(h.readUInt32LE(4), 0x100);
});

test('encodeSegment: every case of the proposal for x86_64', (t) => {
  t.is(encodeSegment(0), CKPT_X86_SEG_NULL);
  t.is(encodeSegment(0x33), CKPT_X86_SEG_USER64_CS);
  t.is(encodeSegment(0x2b), CKPT_X86_SEG_USER64_DS); // __USER32_DS == __USER_DS on x86_64
  t.is(encodeSegment(0x23), CKPT_X86_SEG_USER32_CS);
  t.is(encodeSegment(0x63), CKPT_X86_SEG_TLS | 0); // GDT entry 12
  t.is(encodeSegment(0x6b), CKPT_X86_SEG_TLS | 1);
  t.is(encodeSegment(0x73n), CKPT_X86_SEG_TLS | 2);
  t.is(encodeSegment(0x07), CKPT_X86_SEG_LDT | 0); // LDT entry 0
  t.is(encodeSegment((5 << 3) | 4 | 3), CKPT_X86_SEG_LDT | 5);
  t.is(encodeSegment(0xffff), CKPT_X86_SEG_LDT | 0x1fff);
  for (const nullSelector of [0, 1, 2, 3]) t.is(encodeSegment(nullSelector), CKPT_X86_SEG_NULL);
});

test('encodeSegment: selectors the kernel would BUG on throw a FormatError naming them', (t) => {
  t.throws(() => encodeSegment(0x30), { instanceOf: FormatError, message: /0x30.*RPL 0/ }); // kernel CS
  t.throws(() => encodeSegment(0x3b), { instanceOf: FormatError, message: /0x3b/ }); // GDT entry 7
  t.throws(() => encodeSegment(0x7b), { instanceOf: FormatError, message: /0x7b/ }); // GDT entry 15
  t.throws(() => encodeSegment(0x10000), { instanceOf: FormatError });
  const regs = sampleRegs({ es: 0x18n });
  t.throws(() => encodeRegs(regs, []), { instanceOf: FormatError, message: /^es: .*0x18/ });
});

test('decodeSegment names every code and rejects unknown ones', (t) => {
  t.is(decodeSegment(CKPT_X86_SEG_NULL), 'NULL');
  t.is(decodeSegment(CKPT_X86_SEG_USER32_CS), 'USER32_CS');
  t.is(decodeSegment(CKPT_X86_SEG_USER32_DS), 'USER32_DS');
  t.is(decodeSegment(CKPT_X86_SEG_USER64_CS), 'USER64_CS');
  t.is(decodeSegment(CKPT_X86_SEG_USER64_DS), 'USER64_DS');
  t.is(decodeSegment(0x4000), 'TLS#0');
  t.is(decodeSegment(0x4002), 'TLS#2');
  t.is(decodeSegment(0x8005), 'LDT#5');
  for (const bad of [5, 0x4003, 0x2000, 0xc000, 0x10000]) {
    t.throws(() => decodeSegment(bad), { instanceOf: FormatError }, `code 0x${bad.toString(16)}`);
  }
  for (const sel of [0, 0x23, 0x2b, 0x33, 0x63, 0x73, 0x0f]) t.notThrows(() => decodeSegment(encodeSegment(sel)));
});

test('encodeTls: a typical TLS descriptor, hand-computed', (t) => {
  // a = limit[15:0] | base[15:0] << 16                         = 0x5678ffff
  // b = base[23:16] 0x34 | type 0b0011 << 8 (writable data, accessed) | s << 12 | dpl 3 << 13
  //     | p << 15 | limit[19:16] 0xf << 16 | avl << 20 | d << 22 | g << 23 | base[31:24] 0x12 << 24
  //   = 0x12dff334
  t.is(encodeTls(TYPICAL_DESC), 0x5678ffff_12dff334n);
  // read-only, expand-down (contents 1), not present, byte granular, 16-bit
  t.is(
    encodeTls({ ...TYPICAL_DESC, readExecOnly: true, contents: 1, segNotPresent: true, limitInPages: false, seg32bit: false, useable: false }),
    // type = 0b0101; b = 0x34 | 0x500 | 0x1000 | 0x6000 | 0xf0000 | 0x12000000
    0x5678ffff_120f7534n,
  );
});

test('encodeTls: empty (LDT_empty) and all-zero (LDT_zero) descriptors encode as 0', (t) => {
  t.is(encodeTls(EMPTY_DESC), 0n);
  t.is(encodeTls({ ...EMPTY_DESC, readExecOnly: false, segNotPresent: false }), 0n);
  t.not(encodeTls({ ...EMPTY_DESC, readExecOnly: false }), 0n); // neither: a real (odd) descriptor
});

test('regs: every field at the offset binfmt_regs_image puts it', (t) => {
  const regs = sampleRegs({ fs: 0n, fs_base: 0x7f1234567000n, gs: 0x63n, gs_base: 0xdeadn, ds: 0x2bn, es: 0x23n });
  const buf = encodeRegs(regs, [TYPICAL_DESC, EMPTY_DESC, { ...TYPICAL_DESC, baseAddr: 0 }]);
  const u64 = (off: number) => buf.readBigUInt64LE(off);
  const order: (keyof UserRegs)[] = [
    'r15', 'r14', 'r13', 'r12', 'r11', 'r10', 'r9', 'r8', 'rax', 'orig_rax', 'rbx', 'rcx', 'rdx', 'rsi',
    'rdi', 'rip', 'eflags', 'rbp', 'rsp',
  ];
  order.forEach((name, i) => t.is(u64(i * 8), regs[name], name));
  t.is(u64(152), 0n, 'gs: 0 when the gs selector is in use');
  t.is(u64(160), 0x7f1234567000n, 'fs: fs_base when the fs selector is null');
  t.is(u64(168), 0x5678ffff_12dff334n);
  t.is(u64(176), 0n);
  t.is(u64(184), 0x0000ffff_00dff300n);
  t.is(buf.readUInt16LE(192), CKPT_X86_SEG_TLS | 0, 'gsindex');
  t.is(buf.readUInt16LE(194), CKPT_X86_SEG_NULL, 'fsindex');
  t.is(buf.readUInt16LE(196), CKPT_X86_SEG_USER64_CS, 'cs');
  t.is(buf.readUInt16LE(198), CKPT_X86_SEG_USER64_DS, 'ss');
  t.is(buf.readUInt16LE(200), CKPT_X86_SEG_USER64_DS, 'ds');
  t.is(buf.readUInt16LE(202), CKPT_X86_SEG_USER32_CS, 'es');
  t.is(buf.readUInt32LE(204), 0, 'padding');

  const back = decodeRegs(buf);
  t.is(back.ip, regs.rip);
  t.is(back.flags, regs.eflags);
  t.is(back.orig_ax, regs.orig_rax);
  t.is(back.sp, regs.rsp);
  t.is(back.fs, 0x7f1234567000n);
  t.deepEqual(back.tls, [0x5678ffff_12dff334n, 0n, 0x0000ffff_00dff300n]);
  t.is(back.gsindex, CKPT_X86_SEG_TLS);
  t.is(back.es, CKPT_X86_SEG_USER32_CS);
});

test('regs: fewer than three TLS entries leave the rest 0; more is an error', (t) => {
  const buf = encodeRegs(sampleRegs(), [TYPICAL_DESC]);
  t.deepEqual(decodeRegs(buf).tls, [0x5678ffff_12dff334n, 0n, 0n]);
  t.throws(() => encodeRegs(sampleRegs(), [EMPTY_DESC, EMPTY_DESC, EMPTY_DESC, EMPTY_DESC]), { instanceOf: FormatError });
});

test('mm: 13 u64 then exe_fd 0, padded to 112', (t) => {
  const mm: MmFields = {
    flags: 0x8000_0000_0000_004dn, defFlags: 0n, startCode: 0x400000, endCode: 0x401000, startData: 0x402000,
    endData: 0x403000, startBrk: 0x404000, brk: 0x425000, startStack: 0x7ffd00000000, argStart: 0x7ffd00001000,
    argEnd: 0x7ffd00001100, envStart: 0x7ffd00001100, envEnd: 0x7ffd00001f00,
  };
  const buf = encodeMm(mm);
  t.is(buf.length, 112);
  const expected = [
    mm.flags, mm.defFlags, mm.startCode, mm.endCode, mm.startData, mm.endData, mm.startBrk, mm.brk,
    mm.startStack, mm.argStart, mm.argEnd, mm.envStart, mm.envEnd,
  ];
  expected.forEach((v, i) => t.is(buf.readBigUInt64LE(i * 8), BigInt(v), `u64 #${i}`));
  t.is(buf.readUInt32LE(104), 0, 'exe_fd');
  t.is(buf.readUInt32LE(108), 0, 'padding');
  const back = decodeMm(buf);
  t.is(back.flags, mm.flags);
  t.is(back.brk, 0x425000n);
  t.is(back.envEnd, 0x7ffd00001f00n);
  t.is(back.exeFd, 0);
});

test('vma: field offsets and round trip', (t) => {
  const v = vma({ start: 0x555555554000, end: 0x555555556000, read: true, write: false, exec: true,
    offset: 0x3000, inode: 1234, dev: '08:01', name: '/usr/bin/cat' });
  const buf = encodeVma(v);
  t.is(buf.length, 40);
  t.is(buf.readUInt32LE(0), 1 | 4, 'prot');
  t.is(buf.readUInt32LE(4), MAP_PRIVATE, 'flags');
  t.is(buf.readUInt32LE(8), 0, 'pad');
  t.is(buf.readUInt32LE(12), 0, 'fd');
  t.is(buf.readBigUInt64LE(16), 0x555555554000n, 'start');
  t.is(buf.readBigUInt64LE(24), 0x555555556000n, 'end');
  t.is(buf.readBigUInt64LE(32), 3n, 'pgoff in pages');
  t.deepEqual(decodeVma(buf), { prot: 5, flags: MAP_PRIVATE, pad: 0, fd: 0, start: 0x555555554000n, end: 0x555555556000n, pgoff: 3n });
});

const ANON = vma();
const HEAP = vma({ name: '[heap]' });
const STACK = vma({ name: '[stack]', vmFlags: new Set(['rd', 'wr', 'gd']) });
const VDSO = vma({ name: '[vdso]', write: false, exec: true });
const VVAR = vma({ name: '[vvar]', write: false, vmFlags: new Set(['rd', 'mr', 'pf', 'io']) });
const VVAR_VCLOCK = vma({ name: '[vvar_vclock]', write: false, vmFlags: new Set(['rd', 'mr']) });
const PRIVATE_FILE = vma({ inode: 42, dev: '08:01', name: '/usr/lib/libc.so.6', offset: 0x28000, write: false, exec: true });
const SHARED_FILE = vma({ inode: 42, dev: '08:01', name: '/tmp/data', mayShare: true, vmFlags: new Set(['rd', 'wr', 'sh', 'mr', 'mw', 'ms', 'me']) });
const READONLY_SHARED_FILE = vma({ inode: 42, dev: '08:01', name: '/tmp/data', mayShare: true, write: false, vmFlags: new Set(['rd', 'mr', 'me', 'ms']) });
const SHARED_ANON = vma({ inode: 2049, dev: '00:01', name: '/dev/zero (deleted)', mayShare: true, vmFlags: new Set(['rd', 'wr', 'sh', 'mr', 'mw', 'ms']) });
const NAMED_SHARED_ANON = vma({ inode: 7, dev: '00:01', name: '[anon_shmem:ring]', mayShare: true, vmFlags: new Set(['rd', 'wr', 'sh']) });
const DELETED_PRIVATE_FILE = vma({ inode: 99, dev: '00:2a', name: '/tmp/x (deleted)' });
const DEVICE_IO = vma({ inode: 5, dev: '00:05', name: '/dev/mem', vmFlags: new Set(['rd', 'wr', 'io', 'pf']) });

test('encodeVma flags: anonymous, private file, shared file, shared anonymous', (t) => {
  const flags = (v: Vma) => encodeVma(v).readUInt32LE(4);
  t.is(flags(ANON), MAP_ANONYMOUS | MAP_PRIVATE);
  t.is(flags(HEAP), MAP_ANONYMOUS | MAP_PRIVATE);
  t.is(flags(STACK), MAP_ANONYMOUS | MAP_PRIVATE);
  t.is(flags(VDSO), MAP_ANONYMOUS | MAP_PRIVATE);
  t.is(flags(PRIVATE_FILE), MAP_PRIVATE);
  t.is(flags(DELETED_PRIVATE_FILE), MAP_PRIVATE);
  t.is(flags(SHARED_FILE), MAP_SHARED);
  // shmem behind MAP_SHARED|MAP_ANONYMOUS is a vm_file for the kernel
  t.is(flags(SHARED_ANON), MAP_SHARED);
  t.is(flags(NAMED_SHARED_ANON), MAP_SHARED);
  t.is(encodeVma(VDSO).readUInt32LE(0), 1 | 4);
  t.is(encodeVma(ANON).readBigUInt64LE(32), 0n);
});

test('carriesPages: private memory yes; shared, [vvar], VM_IO and VM_PFNMAP no', (t) => {
  for (const v of [ANON, HEAP, STACK, VDSO, PRIVATE_FILE, DELETED_PRIVATE_FILE]) t.true(carriesPages(v), v.name || 'anon');
  for (const v of [SHARED_FILE, READONLY_SHARED_FILE, SHARED_ANON, NAMED_SHARED_ANON, VVAR, VVAR_VCLOCK, DEVICE_IO]) {
    t.false(carriesPages(v), v.name);
  }
  t.false(carriesPages(vma({ vmFlags: new Set(['rd', 'wr', 'pf']) })), 'anonymous VM_PFNMAP');
  t.false(carriesPages(vma({ vmFlags: new Set(['rd', 'wr', 'io']) })), 'anonymous VM_IO');
});
