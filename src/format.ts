// The binfmt_img v0 byte layout (include/linux/binfmt_img.h of the 2011 "/proc/<pid>/dump"
// proposal): little-endian x86_64 with the structs' natural alignment. The only module that
// knows where a field lives; the writer (imagegen) and the reader (show) both go through it.

import type { MmFields, UserDesc, UserRegs, Vma } from './model.js';
import { PAGE_SIZE } from './model.js';

export const IMG_MAGIC = 0xa75b8d43;
export const IMG_VERSION_0 = 0x100;

/** struct binfmt_img_header: u32 magic, u32 version. */
export const HEADER_SIZE = 8;
/** struct binfmt_regs_image: 24 u64 then 6 u16 (204 bytes), padded to its u64 alignment. */
export const REGS_SIZE = 208;
/** struct binfmt_mm_image: 13 u64 then u32 exe_fd (108 bytes), padded to its u64 alignment. */
export const MM_SIZE = 112;
/** struct binfmt_vma_image: 4 u32 then 3 u64. */
export const VMA_SIZE = 40;
/** struct binfmt_page_image: the u64 vaddr of the page that follows it. */
export const PAGE_RECORD_HEADER_SIZE = 8;
export const PAGE_RECORD_SIZE = PAGE_RECORD_HEADER_SIZE + PAGE_SIZE;
/** A zero binfmt_page_image ends the page records. */
export const TRAILER_SIZE = PAGE_RECORD_HEADER_SIZE;

/** The all-zero vma record that ends the vma list. Shared: never write into it. */
export const VMA_TERMINATOR: Buffer = Buffer.alloc(VMA_SIZE);

export const CKPT_X86_SEG_NULL = 0;
export const CKPT_X86_SEG_USER32_CS = 1;
export const CKPT_X86_SEG_USER32_DS = 2;
export const CKPT_X86_SEG_USER64_CS = 3;
export const CKPT_X86_SEG_USER64_DS = 4;
export const CKPT_X86_SEG_TLS = 0x4000;
export const CKPT_X86_SEG_LDT = 0x8000;

export const CKPT_TLS_ENTRIES = 3;

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;

// x86_64 GDT layout (arch/x86/include/asm/segment.h). __USER32_DS is __USER_DS on x86_64, so
// the proposal's USER32_DS branch can never match there: 0x2b always encodes as USER64_DS.
export const USER32_CS_SELECTOR = 0x23;
export const USER_DS_SELECTOR = 0x2b;
export const USER_CS_SELECTOR = 0x33;
export const GDT_ENTRY_TLS_MIN = 12;
const GDT_ENTRY_TLS_MAX = GDT_ENTRY_TLS_MIN + CKPT_TLS_ENTRIES - 1;
export const SELECTOR_LDT_BIT = 4;
export const SELECTOR_RPL_USER = 3;

/** A value the v0 format cannot represent (the proposal's kernel code would BUG() on it). */
export class FormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FormatError';
  }
}

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

/** The proposal's encode_segment for an x86_64 kernel with CONFIG_COMPAT. */
export function encodeSegment(selector: number | bigint): number {
  const sel = Number(selector);
  if (!Number.isInteger(sel) || sel < 0 || sel > 0xffff) {
    throw new FormatError(`segment selector ${hex(selector)} is not a 16-bit value`);
  }
  // Selectors 0..3 all name the null descriptor (the RPL bits do not matter there); a task may
  // load 1..3 into fs or gs, and a dump must not fail for it.
  if ((sel & ~3) === 0) return CKPT_X86_SEG_NULL;
  if ((sel & 3) !== SELECTOR_RPL_USER) {
    throw new FormatError(`segment selector ${hex(sel)} has RPL ${sel & 3}, expected 3`);
  }
  if (sel === USER_CS_SELECTOR) return CKPT_X86_SEG_USER64_CS;
  if (sel === USER_DS_SELECTOR) return CKPT_X86_SEG_USER64_DS;
  if (sel === USER32_CS_SELECTOR) return CKPT_X86_SEG_USER32_CS;
  const index = sel >> 3;
  if (sel & SELECTOR_LDT_BIT) return CKPT_X86_SEG_LDT | index;
  if (index >= GDT_ENTRY_TLS_MIN && index <= GDT_ENTRY_TLS_MAX) {
    return CKPT_X86_SEG_TLS | (index - GDT_ENTRY_TLS_MIN);
  }
  throw new FormatError(`segment selector ${hex(sel)} (GDT entry ${index}) has no v0 encoding`);
}

/** The readable name of a segment code; throws FormatError for a code no encoder produces. */
export function decodeSegment(code: number): string {
  switch (code) {
    case CKPT_X86_SEG_NULL: return 'NULL';
    case CKPT_X86_SEG_USER32_CS: return 'USER32_CS';
    case CKPT_X86_SEG_USER32_DS: return 'USER32_DS';
    case CKPT_X86_SEG_USER64_CS: return 'USER64_CS';
    case CKPT_X86_SEG_USER64_DS: return 'USER64_DS';
  }
  if ((code & ~0x1fff) === CKPT_X86_SEG_LDT) return `LDT#${code & 0x1fff}`;
  if ((code & ~0xfff) === CKPT_X86_SEG_TLS && (code & 0xfff) < CKPT_TLS_ENTRIES) return `TLS#${code & 0xfff}`;
  throw new FormatError(`segment code ${hex(code)} is not a v0 segment encoding`);
}

// LDT_empty() (what PTRACE_GET_THREAD_AREA reports for a cleared entry) and LDT_zero() (an
// all-zero request): set_tls_desc() stores both as an all-zero descriptor.
function isEmptyDesc(d: UserDesc): boolean {
  const common = d.baseAddr === 0 && d.limit === 0 && d.contents === 0 && !d.seg32bit &&
    !d.limitInPages && !d.useable;
  const ldtEmpty = d.readExecOnly && d.segNotPresent;
  const ldtZero = !d.readExecOnly && !d.segNotPresent;
  return common && (ldtEmpty || ldtZero);
}

/**
 * The proposal's encode_tls: ((u64)desc.a << 32) + desc.b, where a and b are the low and high
 * 32-bit words of the descriptor the kernel's fill_ldt() builds from this user_desc.
 */
export function encodeTls(d: UserDesc): bigint {
  if (isEmptyDesc(d)) return 0n;
  const base = d.baseAddr >>> 0;
  const limit = d.limit >>> 0;
  // fill_ldt always sets the accessed bit (type bit 0) so the GDT can stay read-only.
  const type = ((d.readExecOnly ? 0 : 1) << 1) | ((d.contents & 3) << 2) | 1;
  const a = ((limit & 0xffff) | ((base & 0xffff) << 16)) >>> 0;
  const b = (
    ((base >>> 16) & 0xff) |
    (type << 8) |
    (1 << 12) /* s: code/data */ |
    (3 << 13) /* dpl 3 */ |
    ((d.segNotPresent ? 0 : 1) << 15) |
    (((limit >>> 16) & 0xf) << 16) |
    ((d.useable ? 1 : 0) << 20) |
    /* l (bit 21) stays 0: fill_ldt never sets it */
    ((d.seg32bit ? 1 : 0) << 22) |
    ((d.limitInPages ? 1 : 0) << 23) |
    (((base >>> 24) & 0xff) << 24)
  ) >>> 0;
  return (BigInt(a) << 32n) + BigInt(b);
}

export function encodeHeader(): Buffer {
  const buf = Buffer.alloc(HEADER_SIZE);
  buf.writeUInt32LE(IMG_MAGIC, 0);
  buf.writeUInt32LE(IMG_VERSION_0, 4);
  return buf;
}

export interface DecodedHeader { magic: number; version: number }

export function decodeHeader(buf: Buffer): DecodedHeader {
  return { magic: buf.readUInt32LE(0), version: buf.readUInt32LE(4) };
}

// binfmt_regs_image: the general registers in this order at 8-byte steps, each paired with
// the user_regs_struct field it comes from.
const REGS_GENERAL = [
  ['r15', 'r15'], ['r14', 'r14'], ['r13', 'r13'], ['r12', 'r12'], ['r11', 'r11'], ['r10', 'r10'],
  ['r9', 'r9'], ['r8', 'r8'], ['ax', 'rax'], ['orig_ax', 'orig_rax'], ['bx', 'rbx'], ['cx', 'rcx'],
  ['dx', 'rdx'], ['si', 'rsi'], ['di', 'rdi'], ['ip', 'rip'], ['flags', 'eflags'], ['bp', 'rbp'],
  ['sp', 'rsp'],
] as const satisfies readonly (readonly [string, keyof UserRegs])[];
const REGS_GS_OFFSET = REGS_GENERAL.length * 8;
const REGS_FS_OFFSET = REGS_GS_OFFSET + 8;
const REGS_TLS_OFFSET = REGS_FS_OFFSET + 8;
const REGS_SEGMENTS_OFFSET = REGS_TLS_OFFSET + CKPT_TLS_ENTRIES * 8;
// The six u16 segment codes in image order, each with the user_regs_struct selector it encodes
// (thread.gsindex/fsindex are what PTRACE_GETREGS reports as gs/fs).
const REGS_SEGMENTS = [
  ['gsindex', 'gs'], ['fsindex', 'fs'], ['cs', 'cs'], ['ss', 'ss'], ['ds', 'ds'], ['es', 'es'],
] as const satisfies readonly (readonly [string, keyof UserRegs])[];
/** The segment codes of DecodedRegs, in image order, for readers that check or show each. */
export const SEGMENT_FIELDS = REGS_SEGMENTS.map(([name]) => name);

type GeneralRegName = (typeof REGS_GENERAL)[number][0];
type SegmentName = (typeof REGS_SEGMENTS)[number][0];

export type DecodedRegs = Record<GeneralRegName, bigint> & Record<SegmentName, number> & {
  gs: bigint;
  fs: bigint;
  tls: bigint[];
};

/** Byte offset of every binfmt_regs_image field, for readers that report where a field is. */
export const REGS_OFFSETS: Readonly<Record<GeneralRegName | SegmentName | 'gs' | 'fs' | 'tls', number>> =
  Object.fromEntries([
    ...REGS_GENERAL.map(([name], i) => [name, i * 8]),
    ['gs', REGS_GS_OFFSET], ['fs', REGS_FS_OFFSET], ['tls', REGS_TLS_OFFSET],
    ...REGS_SEGMENTS.map(([name], i) => [name, REGS_SEGMENTS_OFFSET + i * 2]),
  ]) as Record<GeneralRegName | SegmentName | 'gs' | 'fs' | 'tls', number>;

/** Selector index 0 means the base register is in use (the kernel's "gsindex == 0" case). */
const baseIfNoSelector = (selector: bigint, base: bigint): bigint => ((selector >> 3n) === 0n ? base : 0n);

export function encodeRegs(regs: UserRegs, tls: readonly UserDesc[]): Buffer {
  if (tls.length > CKPT_TLS_ENTRIES) {
    throw new FormatError(`${tls.length} TLS entries, the image holds ${CKPT_TLS_ENTRIES}`);
  }
  const buf = Buffer.alloc(REGS_SIZE);
  REGS_GENERAL.forEach(([, from], i) => buf.writeBigUInt64LE(BigInt.asUintN(64, regs[from]), i * 8));
  buf.writeBigUInt64LE(BigInt.asUintN(64, baseIfNoSelector(regs.gs, regs.gs_base)), REGS_GS_OFFSET);
  buf.writeBigUInt64LE(BigInt.asUintN(64, baseIfNoSelector(regs.fs, regs.fs_base)), REGS_FS_OFFSET);
  tls.forEach((desc, i) => buf.writeBigUInt64LE(encodeTls(desc), REGS_TLS_OFFSET + i * 8));
  REGS_SEGMENTS.forEach(([name, from], i) => {
    let code: number;
    try {
      code = encodeSegment(regs[from]);
    } catch (err) {
      throw err instanceof FormatError ? new FormatError(`${name}: ${err.message}`) : err;
    }
    buf.writeUInt16LE(code, REGS_SEGMENTS_OFFSET + i * 2);
  });
  return buf;
}

/** Fields as stored; segment codes are not checked (see decodeSegment). */
export function decodeRegs(buf: Buffer): DecodedRegs {
  const regs: Record<string, unknown> = {};
  REGS_GENERAL.forEach(([name], i) => { regs[name] = buf.readBigUInt64LE(i * 8); });
  regs.gs = buf.readBigUInt64LE(REGS_GS_OFFSET);
  regs.fs = buf.readBigUInt64LE(REGS_FS_OFFSET);
  regs.tls = Array.from({ length: CKPT_TLS_ENTRIES }, (_, i) => buf.readBigUInt64LE(REGS_TLS_OFFSET + i * 8));
  REGS_SEGMENTS.forEach(([name], i) => { regs[name] = buf.readUInt16LE(REGS_SEGMENTS_OFFSET + i * 2); });
  return regs as DecodedRegs;
}

// binfmt_mm_image: these u64 in order, then u32 exe_fd.
const MM_FIELDS = [
  'flags', 'defFlags', 'startCode', 'endCode', 'startData', 'endData', 'startBrk', 'brk',
  'startStack', 'argStart', 'argEnd', 'envStart', 'envEnd',
] as const satisfies readonly (keyof MmFields)[];
const MM_EXE_FD_OFFSET = MM_FIELDS.length * 8;

export type DecodedMm = Record<(typeof MM_FIELDS)[number], bigint> & { exeFd: number };

export function encodeMm(mm: MmFields): Buffer {
  const buf = Buffer.alloc(MM_SIZE);
  MM_FIELDS.forEach((name, i) => buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(mm[name])), i * 8));
  // exe_fd: v0 images never carry a file descriptor for the executable.
  buf.writeUInt32LE(0, MM_EXE_FD_OFFSET);
  return buf;
}

export function decodeMm(buf: Buffer): DecodedMm {
  const mm: Record<string, unknown> = {};
  MM_FIELDS.forEach((name, i) => { mm[name] = buf.readBigUInt64LE(i * 8); });
  mm.exeFd = buf.readUInt32LE(MM_EXE_FD_OFFSET);
  return mm as DecodedMm;
}

/** binfmt_vma_image field offsets. */
export const VMA_OFFSETS = { prot: 0, flags: 4, pad: 8, fd: 12, start: 16, end: 24, pgoff: 32 } as const;

export interface DecodedVma {
  prot: number;
  flags: number;
  pad: number;
  fd: number;
  start: bigint;
  end: bigint;
  pgoff: bigint;
}

/** PAGE_SIZE for a DecodedVma's bigint addresses. */
export const PAGE_SIZE_BIGINT = BigInt(PAGE_SIZE);

/**
 * Whether the kernel would have vm_file == NULL for this VMA. maps shows no file as inode 0 and
 * a pseudo-name ([heap], [stack], [vdso], [anon:...]) or none. Shared anonymous memory is not
 * such a VMA: it is backed by a shmem file ("/dev/zero (deleted)", "[anon_shmem:...]", inode != 0).
 */
export function isAnonymous(vma: Vma): boolean {
  return vma.inode === 0 && !vma.name.startsWith('/');
}

export function encodeVma(vma: Vma): Buffer {
  const prot = (vma.read ? PROT_READ : 0) | (vma.write ? PROT_WRITE : 0) | (vma.exec ? PROT_EXEC : 0);
  // The proposal tests VM_MAYSHARE here: maps' 's'.
  const flags = (isAnonymous(vma) ? MAP_ANONYMOUS : 0) | (vma.mayShare ? MAP_SHARED : MAP_PRIVATE);
  const buf = Buffer.alloc(VMA_SIZE);
  buf.writeUInt32LE(prot, VMA_OFFSETS.prot);
  buf.writeUInt32LE(flags, VMA_OFFSETS.flags);
  // pad and fd stay 0: v0 never passes a file descriptor for the mapped file.
  buf.writeBigUInt64LE(BigInt(vma.start), VMA_OFFSETS.start);
  buf.writeBigUInt64LE(BigInt(vma.end), VMA_OFFSETS.end);
  // maps prints vm_pgoff << PAGE_SHIFT as the offset; anonymous VMAs show 0 there, so their
  // pgoff is 0 too (the kernel's vm_pgoff for them is an implementation detail of rmap).
  buf.writeBigUInt64LE(BigInt(Math.floor(vma.offset / PAGE_SIZE)), VMA_OFFSETS.pgoff);
  return buf;
}

export function decodeVma(buf: Buffer): DecodedVma {
  return {
    prot: buf.readUInt32LE(VMA_OFFSETS.prot),
    flags: buf.readUInt32LE(VMA_OFFSETS.flags),
    pad: buf.readUInt32LE(VMA_OFFSETS.pad),
    fd: buf.readUInt32LE(VMA_OFFSETS.fd),
    start: buf.readBigUInt64LE(VMA_OFFSETS.start),
    end: buf.readBigUInt64LE(VMA_OFFSETS.end),
    pgoff: buf.readBigUInt64LE(VMA_OFFSETS.pgoff),
  };
}

// Mappings whose pages cannot be read by design: [vvar] holds kernel time data that faults or
// reads as garbage through ptrace/process_vm_readv; VM_IO and VM_PFNMAP have no struct page
// behind them (the proposal's follow_page(FOLL_DUMP) skipped them the same way).
const UNREADABLE_NAMES = new Set(['[vvar]', '[vvar_vclock]']);
const UNREADABLE_VM_FLAGS = ['io', 'pf'];

/**
 * Whether a v0 dump carries this VMA's pages: the proposal's is_private_vma() (no vm_file, or
 * not shared) minus the mappings that cannot be read by design.
 * "Shared" is judged by maps' 's' (VM_MAYSHARE) rather than VM_SHARED ('sh'): they differ only
 * for a MAP_SHARED mapping of a file opened read-only, whose pages cannot differ from the file,
 * so leaving them out loses nothing. Shared anonymous memory has a shmem vm_file, so like in the
 * proposal it is shared file memory and its pages are not carried.
 */
export function carriesPages(vma: Vma): boolean {
  const isPrivate = isAnonymous(vma) || !vma.mayShare;
  if (!isPrivate) return false;
  if (UNREADABLE_NAMES.has(vma.name)) return false;
  return !UNREADABLE_VM_FLAGS.some((flag) => vma.vmFlags.has(flag));
}
