// The core file: the ELF core Linux's own dumper (fs/binfmt_elf.c, elf_core_dump) would write for
// a snapshot, as a layout of extents over the same snapshot as the dump.
//   ELF header | PT_NOTE, one PT_LOAD per VMA and [vsyscall] | notes | zeros to a page boundary |
//   the bytes vma_dump_size keeps of each VMA, in address order | section header 0 (>= PN_XNUM)

import {
  ELF_HEADER_SIZE, FPREGSET_SIZE, NT_AUXV, NT_FILE, NT_PRFPREG, NT_PRPSINFO, NT_PRSTATUS, NT_SIGINFO,
  NT_X86_XSAVE_LAYOUT, NT_X86_XSTATE, PF_R, PF_W, PF_X, PN_XNUM, PROGRAM_HEADER_SIZE, PRPSINFO_SIZE,
  PRSTATUS_SIZE, SECTION_HEADER_SIZE,
  encodeElfHeader, encodeExtendedNumbering, encodeFileNote, encodeLoadHeader, encodeNoteHeader, encodeNotes,
  encodePrPsinfo, encodePrStatus, noteSize, type FileMapping, type Note,
} from './elfnotes.js';
import { Layout, LayoutBuilder } from './extents.js';
import { PAGE_SIZE, type CoreInfo, type Snapshot, type Vma, type VmaFacts } from './model.js';
import { gapsOf, type PageIndex } from './pageindex.js';
import { SIGINFO_SIZE } from './ptrace/syscalls.js';
import { isScannable } from './snapshot.js';

/** The bits of /proc/<pid>/coredump_filter (MMF_DUMP_* minus MMF_DUMP_FILTER_SHIFT). */
export const DUMP_ANON_PRIVATE = 1 << 0;
export const DUMP_ANON_SHARED = 1 << 1;
export const DUMP_MAPPED_PRIVATE = 1 << 2;
export const DUMP_MAPPED_SHARED = 1 << 3;
export const DUMP_ELF_HEADERS = 1 << 4;
export const DUMP_HUGETLB_PRIVATE = 1 << 5;
export const DUMP_HUGETLB_SHARED = 1 << 6;

/** Anonymous memory without vm_ops: the kernel's dumper skips its never-touched pages as zeros. */
function isPlainAnonymous(vma: Vma, facts: VmaFacts): boolean {
  return facts.file === null &&
    (vma.name === '' || vma.name === '[heap]' || vma.name === '[stack]' || vma.name.startsWith('[anon:'));
}

/** The kernel's special mappings ([vdso], [vvar], [vsyscall], ...), which a core always carries. */
function isSpecialMapping(vma: Vma, facts: VmaFacts): boolean {
  return facts.file === null && !isPlainAnonymous(vma, facts);
}

/**
 * How many bytes of the VMA the core carries (p_filesz): fs/coredump.c's vma_dump_size, with
 * userspace's view of the kernel's state: 'anonymous' stands for vma->anon_vma, VmFlags 'sh' for
 * VM_SHARED, 'dd' VM_DONTDUMP, 'ht' hugetlb, 'io' VM_IO. DAX mappings are not told apart.
 */
export function vmaDumpSize(vma: Vma, facts: VmaFacts, filter: number): number {
  const whole = vma.end - vma.start;
  const keep = (bit: number) => ((filter & bit) !== 0 ? whole : 0);
  const shared = vma.vmFlags.has('sh');
  if (isSpecialMapping(vma, facts)) return whole;
  if (vma.vmFlags.has('dd')) return 0;
  if (vma.vmFlags.has('ht')) return keep(shared ? DUMP_HUGETLB_SHARED : DUMP_HUGETLB_PRIVATE);
  if (vma.vmFlags.has('io')) return 0;
  if (shared) return keep((facts.file?.links ?? 0) === 0 ? DUMP_ANON_SHARED : DUMP_MAPPED_SHARED);
  if (facts.anonymous && (filter & DUMP_ANON_PRIVATE) !== 0) return whole;
  if (facts.file === null) return 0;
  if ((filter & DUMP_MAPPED_PRIVATE) !== 0) return whole;
  // The first page of an executable's or library's mapping tells what was mapped there.
  const elfHeader = vma.offset === 0 && vma.read && (facts.file.executable || facts.startsWithElf);
  return (filter & DUMP_ELF_HEADERS) !== 0 && elfHeader ? PAGE_SIZE : 0;
}

/** One PT_LOAD. */
interface Segment {
  vma: Vma;
  facts: VmaFacts;
  dumpSize: number;
}

/** Everything a core's size depends on, as a snapshot or a preview knows it. */
export interface CoreShape {
  vmas: readonly Vma[];
  core: Pick<CoreInfo, 'filter' | 'vmaFacts' | 'gate'>;
  threadCount: number;
  xstateSize: number;
  auxvSize: number;
  xsaveLayoutSize: number;
}

const NO_FACTS: VmaFacts = { anonymous: false, startsWithElf: false, file: null };

function segments(vmas: readonly Vma[], core: CoreShape['core']): Segment[] {
  if (core.vmaFacts.length !== vmas.length) {
    throw new Error(`core facts cover ${core.vmaFacts.length} VMAs, the snapshot has ${vmas.length}`);
  }
  const all = vmas.map((vma, i) => ({ vma, facts: core.vmaFacts[i] }));
  if (core.gate) all.push({ vma: core.gate, facts: NO_FACTS });
  return all.map(({ vma, facts }) => ({ vma, facts, dumpSize: vmaDumpSize(vma, facts, core.filter) }));
}

/** Bytes of the notes: the leader's seven, three per other thread, the XSAVE layout. */
function notesSize(shape: CoreShape): number {
  const fileNoteSize = encodeFileNote(fileMappings(shape.vmas, shape.core.vmaFacts)).length;
  const perThread = noteSize('CORE', PRSTATUS_SIZE) + noteSize('CORE', FPREGSET_SIZE) + noteSize('LINUX', shape.xstateSize);
  return shape.threadCount * perThread +
    noteSize('CORE', PRPSINFO_SIZE) + noteSize('CORE', SIGINFO_SIZE) + noteSize('CORE', shape.auxvSize) +
    noteSize('CORE', fileNoteSize) +
    (shape.xsaveLayoutSize > 0 ? noteSize('LINUX', shape.xsaveLayoutSize) : 0);
}

/** Where the memory starts: after the ELF header, program headers and notes, page-aligned. */
function dataOffset(segmentCount: number, notesBytes: number): number {
  const headers = ELF_HEADER_SIZE + (segmentCount + 1) * PROGRAM_HEADER_SIZE;
  return Math.ceil((headers + notesBytes) / PAGE_SIZE) * PAGE_SIZE;
}

/** Whether e_phnum overflows, and section header 0 carries the program header count. */
function extendedNumbering(segs: readonly Segment[]): boolean {
  return segs.length + 1 >= PN_XNUM;
}

export function coreSize(shape: CoreShape): number {
  const segs = segments(shape.vmas, shape.core);
  const data = segs.reduce((sum, s) => sum + s.dumpSize, 0);
  return dataOffset(segs.length, notesSize(shape)) + data + (extendedNumbering(segs) ? SECTION_HEADER_SIZE : 0);
}

/** The file-backed VMAs as NT_FILE lists them (maps escapes a newline in a name as \012). */
function fileMappings(vmas: readonly Vma[], facts: readonly VmaFacts[]): FileMapping[] {
  return vmas.filter((_, i) => facts[i].file !== null).map((v) => ({
    start: v.start, end: v.end, pageOffset: v.offset / PAGE_SIZE, name: v.name.replaceAll('\\012', '\n'),
  }));
}

/** The notes in elf_core_dump's order: the leader's, then each other thread's. */
export function coreNotes(snapshot: Snapshot): Note[] {
  const { core } = snapshot;
  const p = core.process;
  const signal = core.siginfo.readInt32LE(0);
  const threadNotes = snapshot.threads.map((thread, i): Note[] => {
    const t = core.threads[i];
    if (t?.tid !== thread.tid) throw new Error(`core state of thread ${thread.tid} of pid ${snapshot.pid} is missing`);
    const prstatus = encodePrStatus({
      signal, sigPending: t.sigPending, sigBlocked: t.sigBlocked, pid: t.ownTid, ppid: p.ppid, pgrp: p.pgrp, sid: p.sid,
      utime: t.utime, stime: t.stime, cutime: p.cutime, cstime: p.cstime, regs: thread.regs,
    });
    return [
      { name: 'CORE', type: NT_PRSTATUS, desc: prstatus },
      { name: 'CORE', type: NT_PRFPREG, desc: t.fpregs },
      { name: 'LINUX', type: NT_X86_XSTATE, desc: t.xstate },
    ];
  });
  const [leaderStatus, ...leaderRegsets] = threadNotes[0];
  const processNotes: Note[] = [
    { name: 'CORE', type: NT_PRPSINFO, desc: encodePrPsinfo(p) },
    { name: 'CORE', type: NT_SIGINFO, desc: core.siginfo },
    { name: 'CORE', type: NT_AUXV, desc: core.auxv },
    { name: 'CORE', type: NT_FILE, desc: encodeFileNote(fileMappings(core.vmas, core.vmaFacts)) },
  ];
  const layout: Note[] = core.xsaveLayout ? [{ name: 'LINUX', type: NT_X86_XSAVE_LAYOUT, desc: core.xsaveLayout }] : [];
  return [leaderStatus, ...processNotes, ...leaderRegsets, ...threadNotes.slice(1).flat(), ...layout];
}

export function coreLayout(snapshot: Snapshot): Layout {
  const segs = segments(snapshot.core.vmas, snapshot.core);
  const notes = encodeNotes(coreNotes(snapshot));
  const loadHeaders: Buffer[] = [];
  let offset = dataOffset(segs.length, notes.length);
  for (const s of segs) {
    const flags = (s.vma.read ? PF_R : 0) | (s.vma.write ? PF_W : 0) | (s.vma.exec ? PF_X : 0);
    loadHeaders.push(encodeLoadHeader(offset, s.vma.start, s.dumpSize, s.vma.end - s.vma.start, flags));
    offset += s.dumpSize;
  }
  const head = Buffer.concat([
    encodeElfHeader(segs.length + 1, offset), // the section header, if any, follows the data
    encodeNoteHeader(ELF_HEADER_SIZE + (segs.length + 1) * PROGRAM_HEADER_SIZE, notes.length),
    ...loadHeaders,
    notes,
  ]);

  const builder = new LayoutBuilder().bytes(head).alignTo(PAGE_SIZE);
  for (const s of segs) addSegmentBytes(builder, s, snapshot.pages, snapshot.restore.guardPages ?? []);
  if (extendedNumbering(segs)) builder.bytes(encodeExtendedNumbering(segs.length + 1));
  return builder.build();
}

/**
 * A segment's bytes as the kernel's get_dump_page finds them: pages it cannot get (VM_IO or
 * VM_PFNMAP, an unreadable gate page, past the end of the file, guard pages) are zeros, and so
 * are never touched pages of plain anonymous memory, which are not read from the target at all
 * (nor are guard pages, which the page index leaves out).
 */
function addSegmentBytes(builder: LayoutBuilder, s: Segment, pages: PageIndex, guards: ReadonlyArray<[number, number]>): void {
  const { vma, facts, dumpSize } = s;
  if (dumpSize === 0) return;
  if (!kernelGetsPages(vma)) {
    builder.zeros(dumpSize);
  } else if (isPlainAnonymous(vma, facts)) {
    builder.memory(vma.start, dumpSize, pages);
  } else {
    const fileSize = facts.file?.size ?? null;
    const backed = fileSize === null ? dumpSize
      : Math.min(dumpSize, Math.max(0, Math.ceil((fileSize - vma.offset) / PAGE_SIZE) * PAGE_SIZE));
    let at = vma.start;
    for (const [start, end] of gapsOf(vma.start, vma.start + backed, guards)) {
      builder.zeros(start - at).memory(start, end - start, null);
      at = end;
    }
    builder.zeros(vma.start + dumpSize - at);
  }
}

/**
 * Whether get_dump_page finds pages here: not in VM_IO or VM_PFNMAP mappings (the [vvar]s), not
 * in an execute-only [vsyscall], which has no page table entry.
 */
function kernelGetsPages(vma: Vma): boolean {
  return isScannable(vma) && (vma.read || vma.name !== '[vsyscall]');
}
