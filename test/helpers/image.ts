// An independent reader of binfmt_img v0 images for the tests: it shares no code with src/, so a
// layout mistake there cannot cancel out here. Layout: the structs of the 2011 proposal with
// x86_64 natural alignment (binfmt_regs_image 204 -> 208 bytes, binfmt_mm_image 108 -> 112).

export const IMG_MAGIC = 0xa75b8d43;
export const IMG_VERSION = 0x100;
export const HEADER_SIZE = 8;
export const REGS_SIZE = 208;
export const MM_SIZE = 112;
export const VMA_RECORD_SIZE = 40;
export const PAGE_SIZE = 4096;
export const PAGE_RECORD_SIZE = 8 + PAGE_SIZE;
export const REGS_OFFSET = HEADER_SIZE;
export const MM_OFFSET = REGS_OFFSET + REGS_SIZE;
export const VMAS_OFFSET = MM_OFFSET + MM_SIZE;

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;

const REG_NAMES = ['r15', 'r14', 'r13', 'r12', 'r11', 'r10', 'r9', 'r8', 'ax', 'orig_ax', 'bx', 'cx', 'dx',
  'si', 'di', 'ip', 'flags', 'bp', 'sp', 'gs', 'fs'] as const;
const SEGMENT_NAMES = ['gsindex', 'fsindex', 'cs', 'ss', 'ds', 'es'] as const;
const MM_NAMES = ['flags', 'def_flags', 'start_code', 'end_code', 'start_data', 'end_data', 'start_brk', 'brk',
  'start_stack', 'arg_start', 'arg_end', 'env_start', 'env_end'] as const;

export type ImageRegs = Record<(typeof REG_NAMES)[number], bigint> &
  Record<(typeof SEGMENT_NAMES)[number], number> & { tls: bigint[] };
export type ImageMm = Record<(typeof MM_NAMES)[number], bigint> & { exe_fd: number };

export interface ImageVma {
  prot: number;
  flags: number;
  pad: number;
  fd: number;
  start: number;
  end: number;
  pgoff: number;
}

export interface ImagePage {
  vaddr: number;
  /** Offset in the image of the page's 4096 bytes (its vaddr word is the 8 bytes before). */
  offset: number;
}

export interface Image {
  magic: number;
  version: number;
  regs: ImageRegs;
  mm: ImageMm;
  vmas: ImageVma[];
  pages: ImagePage[];
  /** Offset just past the 8-byte terminator: the v0 image's size. */
  end: number;
  /** The extension after the terminator (only its header is read here), or null. */
  extension: { offset: number; length: number } | null;
  /** The whole image: end plus the extension's length. */
  size: number;
}

/** "IMGX": the extension header is u32 magic, u32 version, u64 length of the whole extension. */
export const EXTENSION_MAGIC = 0x58474d49;
const EXTENSION_HEADER_SIZE = 16;

/** The extension header at offset, whose length must cover exactly the rest of buf. */
function parseExtensionSpan(buf: Buffer, offset: number): { offset: number; length: number } | null {
  if (offset === buf.length) return null;
  need(buf, offset, EXTENSION_HEADER_SIZE, 'extension header');
  const magic = buf.readUInt32LE(offset);
  if (magic !== EXTENSION_MAGIC) throw new Error(`bytes after the terminator at ${offset} are no extension (magic 0x${magic.toString(16)})`);
  const length = Number(buf.readBigUInt64LE(offset + 8));
  if (offset + length !== buf.length) {
    throw new Error(`the extension at ${offset} says ${length} bytes, but ${buf.length - offset} follow the terminator`);
  }
  return { offset, length };
}

function need(buf: Buffer, offset: number, length: number, what: string): void {
  if (offset + length > buf.length) {
    throw new Error(`image truncated at byte ${buf.length}: ${what} needs bytes ${offset}..${offset + length}`);
  }
}

export function parseRegs(buf: Buffer, base = REGS_OFFSET): ImageRegs {
  need(buf, base, REGS_SIZE, 'regs');
  const regs: Record<string, unknown> = {};
  REG_NAMES.forEach((name, i) => { regs[name] = buf.readBigUInt64LE(base + 8 * i); });
  const tlsBase = base + 8 * REG_NAMES.length;
  regs.tls = [0, 1, 2].map((i) => buf.readBigUInt64LE(tlsBase + 8 * i));
  const segBase = tlsBase + 24;
  SEGMENT_NAMES.forEach((name, i) => { regs[name] = buf.readUInt16LE(segBase + 2 * i); });
  return regs as ImageRegs;
}

export function parseMm(buf: Buffer, base = MM_OFFSET): ImageMm {
  need(buf, base, MM_SIZE, 'mm');
  const mm: Record<string, unknown> = {};
  MM_NAMES.forEach((name, i) => { mm[name] = buf.readBigUInt64LE(base + 8 * i); });
  mm.exe_fd = buf.readUInt32LE(base + 8 * MM_NAMES.length);
  return mm as ImageMm;
}

function u64(buf: Buffer, offset: number): number {
  return Number(buf.readBigUInt64LE(offset));
}

export function parseImage(buf: Buffer): Image {
  need(buf, 0, HEADER_SIZE, 'header');
  const magic = buf.readUInt32LE(0);
  const version = buf.readUInt32LE(4);
  const regs = parseRegs(buf);
  const mm = parseMm(buf);

  const vmas: ImageVma[] = [];
  let offset = VMAS_OFFSET;
  for (;;) {
    need(buf, offset, VMA_RECORD_SIZE, `vma record ${vmas.length}`);
    const record = buf.subarray(offset, offset + VMA_RECORD_SIZE);
    offset += VMA_RECORD_SIZE;
    if (record.every((byte) => byte === 0)) break;
    vmas.push({
      prot: record.readUInt32LE(0),
      flags: record.readUInt32LE(4),
      pad: record.readUInt32LE(8),
      fd: record.readUInt32LE(12),
      start: u64(record, 16),
      end: u64(record, 24),
      pgoff: u64(record, 32),
    });
  }

  const pages: ImagePage[] = [];
  for (;;) {
    need(buf, offset, 8, `page record ${pages.length}`);
    const vaddr = u64(buf, offset);
    offset += 8;
    if (vaddr === 0) break;
    need(buf, offset, PAGE_SIZE, `page record ${pages.length} (vaddr 0x${vaddr.toString(16)})`);
    pages.push({ vaddr, offset });
    offset += PAGE_SIZE;
  }
  const extension = parseExtensionSpan(buf, offset);
  return { magic, version, regs, mm, vmas, pages, end: offset, extension, size: offset + (extension?.length ?? 0) };
}

/** Size of a v0 image with the given counts. */
export function imageSize(vmaCount: number, pageCount: number): number {
  return VMAS_OFFSET + (vmaCount + 1) * VMA_RECORD_SIZE + pageCount * PAGE_RECORD_SIZE + 8;
}
