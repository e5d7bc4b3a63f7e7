// The bytes of an x86_64 ELF core as Linux writes them (include/uapi/linux/elf.h,
// include/linux/elfcore.h, fs/binfmt_elf.c): the file header, program headers, and the notes with
// the structs they carry. Little-endian, every struct with its natural alignment.

import { PAGE_SIZE, USER_REGS_ORDER, type UserRegs } from './model.js';
import { CLOCK_TICKS_PER_SECOND } from './proc/stat.js';

export const ELF_HEADER_SIZE = 64;
export const PROGRAM_HEADER_SIZE = 56;
export const SECTION_HEADER_SIZE = 64;
/** e_phnum's escape: with this many segments or more, section header 0's sh_info holds the count. */
export const PN_XNUM = 0xffff;

export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

// The kernel names each regset by the note that holds it in a core, so NT_PRFPREG and
// NT_X86_XSTATE are also what PTRACE_GETREGSET and PTRACE_SETREGSET take.
export const NT_PRSTATUS = 1;
/** The FXSAVE area: x87, MXCSR, XMM registers (FPREGSET_SIZE bytes). */
export const NT_PRFPREG = 2;
export const NT_PRPSINFO = 3;
export const NT_AUXV = 6;
/** The XSAVE area; its size depends on the CPU's enabled features. */
export const NT_X86_XSTATE = 0x202;
export const NT_X86_XSAVE_LAYOUT = 0x205;
export const NT_SIGINFO = 0x53494749;
export const NT_FILE = 0x46494c45;

/** struct elf_prstatus: elf_prstatus_common (112), elf_gregset_t (27 × 8), pr_fpvalid, padding. */
export const PRSTATUS_SIZE = 336;
/** struct elf_prpsinfo. */
export const PRPSINFO_SIZE = 136;
/** struct user_i387_struct: the FXSAVE area. */
export const FPREGSET_SIZE = 512;
/** In NT_X86_XSTATE's XSAVE area: the FXSAVE area's software-reserved bytes, which the kernel fills. */
export const XSAVE_SW_RESERVED_OFFSET = 464;
/** Their first word: the user feature mask (XCR0) of the saving CPU, which says what the area holds. */
export const XSAVE_XCR0_OFFSET = XSAVE_SW_RESERVED_OFFSET;
/** struct x86_xfeat_component: type, size, offset, flags. */
export const XSAVE_COMPONENT_SIZE = 16;

const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const EV_CURRENT = 1;
const ET_CORE = 4;
const EM_X86_64 = 62;
/** ELF_EXEC_PAGESIZE: the alignment of every PT_LOAD. */
const LOAD_ALIGN = PAGE_SIZE;
const NOTE_ALIGN = 4;
const PRARGSZ = 80;
const COMM_SIZE = 16;

/** elf_gregset_t is struct user_regs_struct, in PTRACE_GETREGS order. */
/**
 * The file header of a core with `segments` program headers. At PN_XNUM or more the count moves
 * into the one section header, written at sectionHeaderOffset (the end of the file).
 */
export function encodeElfHeader(segments: number, sectionHeaderOffset: number): Buffer {
  const b = Buffer.alloc(ELF_HEADER_SIZE);
  b.write('\x7fELF', 0, 'latin1');
  b[4] = ELFCLASS64;
  b[5] = ELFDATA2LSB;
  b[6] = EV_CURRENT;
  b.writeUInt16LE(ET_CORE, 16);
  b.writeUInt16LE(EM_X86_64, 18);
  b.writeUInt32LE(EV_CURRENT, 20);
  b.writeBigUInt64LE(BigInt(ELF_HEADER_SIZE), 32); // e_phoff
  b.writeUInt16LE(ELF_HEADER_SIZE, 52);
  b.writeUInt16LE(PROGRAM_HEADER_SIZE, 54);
  b.writeUInt16LE(Math.min(segments, PN_XNUM), 56);
  if (segments >= PN_XNUM) {
    b.writeBigUInt64LE(BigInt(sectionHeaderOffset), 40);
    b.writeUInt16LE(SECTION_HEADER_SIZE, 58);
    b.writeUInt16LE(1, 60); // e_shnum; e_shstrndx stays SHN_UNDEF
  }
  return b;
}

/** Section header 0 of extended numbering: SHT_NULL, sh_size = e_shnum, sh_info = segments. */
export function encodeExtendedNumbering(segments: number): Buffer {
  const b = Buffer.alloc(SECTION_HEADER_SIZE);
  b.writeBigUInt64LE(1n, 32); // sh_size
  b.writeUInt32LE(segments, 44); // sh_info
  return b;
}

export function encodeNoteHeader(offset: number, size: number): Buffer {
  return encodeProgramHeader(PT_NOTE, 0, offset, 0, size, 0, NOTE_ALIGN);
}

export function encodeLoadHeader(offset: number, vaddr: number, filesz: number, memsz: number, flags: number): Buffer {
  return encodeProgramHeader(PT_LOAD, flags, offset, vaddr, filesz, memsz, LOAD_ALIGN);
}

function encodeProgramHeader(type: number, flags: number, offset: number, vaddr: number, filesz: number, memsz: number, align: number): Buffer {
  const b = Buffer.alloc(PROGRAM_HEADER_SIZE);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(flags, 4);
  b.writeBigUInt64LE(BigInt(offset), 8);
  // [vsyscall] lies above 2^53, but page-aligned addresses there are exact doubles.
  b.writeBigUInt64LE(BigInt(vaddr), 16);
  b.writeBigUInt64LE(BigInt(filesz), 32);
  b.writeBigUInt64LE(BigInt(memsz), 40);
  b.writeBigUInt64LE(BigInt(align), 48);
  return b;
}

export interface Note {
  /** "CORE" for the notes of the SVR4 tradition, "LINUX" for Linux's own. */
  name: 'CORE' | 'LINUX';
  type: number;
  desc: Buffer;
}

const align4 = (n: number) => (n + 3) & ~3;

/** Bytes of a note: Elf64_Nhdr, the NUL-terminated name and the descriptor, each padded to 4. */
export function noteSize(name: Note['name'], descSize: number): number {
  return 12 + align4(name.length + 1) + align4(descSize);
}

export function encodeNotes(notes: readonly Note[]): Buffer {
  const out = Buffer.alloc(notes.reduce((sum, n) => sum + noteSize(n.name, n.desc.length), 0));
  let at = 0;
  for (const { name, type, desc } of notes) {
    out.writeUInt32LE(name.length + 1, at);
    out.writeUInt32LE(desc.length, at + 4);
    out.writeUInt32LE(type, at + 8);
    out.write(name, at + 12, 'latin1');
    at += 12 + align4(name.length + 1);
    desc.copy(out, at);
    at += align4(desc.length);
  }
  return out;
}

export interface PrStatus {
  /** The signal the core is about (pr_info.si_signo and pr_cursig). */
  signal: number;
  sigPending: bigint;
  sigBlocked: bigint;
  pid: number;
  ppid: number;
  pgrp: number;
  sid: number;
  /** CPU times in clock ticks. */
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
  regs: UserRegs;
}

export function encodePrStatus(s: PrStatus): Buffer {
  const b = Buffer.alloc(PRSTATUS_SIZE);
  b.writeInt32LE(s.signal, 0);
  b.writeInt16LE(s.signal, 12);
  b.writeBigUInt64LE(s.sigPending, 16);
  b.writeBigUInt64LE(s.sigBlocked, 24);
  b.writeInt32LE(s.pid, 32);
  b.writeInt32LE(s.ppid, 36);
  b.writeInt32LE(s.pgrp, 40);
  b.writeInt32LE(s.sid, 44);
  [s.utime, s.stime, s.cutime, s.cstime].forEach((ticks, i) => writeTimeval(b, 48 + 16 * i, ticks));
  USER_REGS_ORDER.forEach((name, i) => b.writeBigUInt64LE(BigInt.asUintN(64, s.regs[name]), 112 + 8 * i));
  b.writeInt32LE(1, 328); // pr_fpvalid: an NT_PRFPREG note follows
  return b;
}

function writeTimeval(b: Buffer, at: number, ticks: number): void {
  const micros = ticks * (1_000_000 / CLOCK_TICKS_PER_SECOND);
  b.writeBigInt64LE(BigInt(Math.floor(micros / 1_000_000)), at);
  b.writeBigInt64LE(BigInt(micros % 1_000_000), at + 8);
}

export interface PrPsinfo {
  /** /proc's state letter. */
  state: string;
  nice: number;
  flags: number;
  uid: number;
  gid: number;
  pid: number;
  ppid: number;
  pgrp: number;
  sid: number;
  comm: string;
  /** The argument bytes, at most PRARGSZ - 1 of them. */
  args: Buffer;
}

const STATE_LETTERS = 'RSDTZW';

export function encodePrPsinfo(p: PrPsinfo): Buffer {
  const b = Buffer.alloc(PRPSINFO_SIZE);
  // The kernel numbers states by the letters of "RSDTZW"; a tracing stop ('t') is a stop.
  const state = STATE_LETTERS.indexOf(p.state === 't' ? 'T' : p.state);
  b[0] = Math.max(state, 0);
  b.write(state < 0 ? '.' : STATE_LETTERS[state], 1, 'latin1');
  b[2] = p.state === 'Z' ? 1 : 0;
  b.writeInt8(p.nice, 3);
  b.writeBigUInt64LE(BigInt(p.flags), 8);
  b.writeUInt32LE(p.uid, 16);
  b.writeUInt32LE(p.gid, 20);
  b.writeInt32LE(p.pid, 24);
  b.writeInt32LE(p.ppid, 28);
  b.writeInt32LE(p.pgrp, 32);
  b.writeInt32LE(p.sid, 36);
  Buffer.from(p.comm, 'utf8').copy(b, 40, 0, COMM_SIZE - 1);
  p.args.copy(b, 56, 0, PRARGSZ - 1);
  return b;
}

export interface FileMapping {
  start: number;
  end: number;
  /** vm_pgoff: the file offset in pages. */
  pageOffset: number;
  name: string;
}

/** NT_FILE: count, page size, (start, end, page offset) per mapping, then the NUL-terminated names. */
export function encodeFileNote(mappings: readonly FileMapping[]): Buffer {
  const names = mappings.map((m) => Buffer.from(`${m.name}\0`, 'utf8'));
  const b = Buffer.alloc(16 + 24 * mappings.length + names.reduce((sum, n) => sum + n.length, 0));
  b.writeBigUInt64LE(BigInt(mappings.length), 0);
  b.writeBigUInt64LE(BigInt(PAGE_SIZE), 8);
  mappings.forEach((m, i) => {
    b.writeBigUInt64LE(BigInt(m.start), 16 + 24 * i);
    b.writeBigUInt64LE(BigInt(m.end), 24 + 24 * i);
    b.writeBigUInt64LE(BigInt(m.pageOffset), 32 + 24 * i);
  });
  let at = 16 + 24 * mappings.length;
  for (const name of names) at += name.copy(b, at);
  return b;
}

export interface XsaveComponent {
  /** The XSAVE feature number (2 = AVX, 9 = PKRU, ...). */
  type: number;
  size: number;
  /** Offset in the standard-format XSAVE area (the NT_X86_XSTATE layout). */
  offset: number;
}

/** NT_X86_XSAVE_LAYOUT: one struct x86_xfeat_component per extended feature. */
export function encodeXsaveLayout(components: readonly XsaveComponent[]): Buffer {
  const b = Buffer.alloc(XSAVE_COMPONENT_SIZE * components.length);
  components.forEach((c, i) => {
    b.writeUInt32LE(c.type, XSAVE_COMPONENT_SIZE * i);
    b.writeUInt32LE(c.size, XSAVE_COMPONENT_SIZE * i + 4);
    b.writeUInt32LE(c.offset, XSAVE_COMPONENT_SIZE * i + 8);
  });
  return b;
}
