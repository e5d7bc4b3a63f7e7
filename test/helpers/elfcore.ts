// An independent reader of ELF core files for the tests: it shares no code with src/, so a layout
// mistake there cannot cancel out here. Reads the program headers and the notes, nothing else.

export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

export const NT_PRSTATUS = 1;
export const NT_PRFPREG = 2;
export const NT_PRPSINFO = 3;
export const NT_AUXV = 6;
export const NT_X86_XSTATE = 0x202;
export const NT_X86_XSAVE_LAYOUT = 0x205;
export const NT_SIGINFO = 0x53494749;
export const NT_FILE = 0x46494c45;

/** Offset of rip in NT_PRSTATUS: pr_reg starts at 112, rip is user_regs_struct word 16. */
export const PRSTATUS_RIP = 112 + 16 * 8;
export const PRSTATUS_RSP = 112 + 19 * 8;
export const PRSTATUS_PID = 32;

export interface ProgramHeader {
  type: number;
  flags: number;
  offset: number;
  /** bigint: [vsyscall] lies above 2^53. */
  vaddr: bigint;
  filesz: number;
  memsz: number;
  align: number;
}

export interface CoreNote {
  name: string;
  type: number;
  desc: Buffer;
}

export interface ElfCore {
  type: number;
  machine: number;
  /** e_phnum as written (0xffff under extended numbering). */
  phnum: number;
  phdrs: ProgramHeader[];
  notes: CoreNote[];
}

function need(buf: Buffer, offset: number, length: number, what: string): void {
  if (offset + length > buf.length) throw new Error(`core truncated at byte ${buf.length}: ${what} needs bytes ${offset}..${offset + length}`);
}

export function parseElfCore(buf: Buffer): ElfCore {
  need(buf, 0, 64, 'the ELF header');
  if (buf.toString('latin1', 0, 4) !== '\x7fELF') throw new Error('no ELF magic');
  const phoff = Number(buf.readBigUInt64LE(32));
  const shoff = Number(buf.readBigUInt64LE(40));
  const phnum = buf.readUInt16LE(56);
  const count = phnum === 0xffff ? buf.readUInt32LE(shoff + 44) : phnum;
  const phdrs: ProgramHeader[] = [];
  for (let i = 0; i < count; i++) {
    const at = phoff + 56 * i;
    need(buf, at, 56, `program header ${i}`);
    phdrs.push({
      type: buf.readUInt32LE(at), flags: buf.readUInt32LE(at + 4), offset: Number(buf.readBigUInt64LE(at + 8)),
      vaddr: buf.readBigUInt64LE(at + 16), filesz: Number(buf.readBigUInt64LE(at + 32)),
      memsz: Number(buf.readBigUInt64LE(at + 40)), align: Number(buf.readBigUInt64LE(at + 48)),
    });
  }
  const notes = phdrs.filter((p) => p.type === PT_NOTE).flatMap((p) => {
    need(buf, p.offset, p.filesz, 'the notes');
    return parseNotes(buf.subarray(p.offset, p.offset + p.filesz));
  });
  return { type: buf.readUInt16LE(16), machine: buf.readUInt16LE(18), phnum, phdrs, notes };
}

export function parseNotes(buf: Buffer): CoreNote[] {
  const notes: CoreNote[] = [];
  for (let at = 0; at < buf.length; ) {
    const namesz = buf.readUInt32LE(at);
    const descsz = buf.readUInt32LE(at + 4);
    const type = buf.readUInt32LE(at + 8);
    const descAt = at + 12 + ((namesz + 3) & ~3);
    need(buf, descAt, descsz, `note ${notes.length}`);
    notes.push({ name: buf.toString('latin1', at + 12, at + 12 + Math.max(namesz - 1, 0)), type, desc: buf.subarray(descAt, descAt + descsz) });
    at = descAt + ((descsz + 3) & ~3);
  }
  return notes;
}

export function loads(core: ElfCore): ProgramHeader[] {
  return core.phdrs.filter((p) => p.type === PT_LOAD);
}

/** The PT_LOAD starting at vaddr. */
export function loadAt(core: ElfCore, vaddr: number | bigint): ProgramHeader | undefined {
  return core.phdrs.find((p) => p.type === PT_LOAD && p.vaddr === BigInt(vaddr));
}

/** The bytes a PT_LOAD carries. */
export function loadBytes(file: Buffer, load: ProgramHeader): Buffer {
  return file.subarray(load.offset, load.offset + load.filesz);
}
