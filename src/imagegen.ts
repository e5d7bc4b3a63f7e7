// The dump file: the binfmt_img v0 image of a snapshot, as a layout of extents.
//   header | regs | mm | vma records | zero vma record | page records | 8 zero bytes

import {
  HEADER_SIZE, MM_SIZE, REGS_SIZE, TRAILER_SIZE, VMA_SIZE, VMA_TERMINATOR,
  carriesPages, encodeHeader, encodeMm, encodeRegs, encodeVma,
} from './format.js';
import { Layout, LayoutBuilder, RECORD_SIZE } from './extents.js';
import type { Snapshot, Vma } from './model.js';
import type { PageIndex } from './pageindex.js';
import type { FileKind } from './sessions.js';
import { readMemoryLayout } from './snapshot.js';

/** The pages a v0 dump carries: those of its private, readable-by-design VMAs. */
export function dumpedPages(vmas: readonly Vma[], pages: PageIndex): PageIndex {
  return pages.restrict(vmas.filter(carriesPages).map((v): [number, number] => [v.start, v.end]));
}

/** Size of the image of a process with these VMAs and dumped pages. */
export function dumpSize(vmaCount: number, dumpedPageCount: number): number {
  return HEADER_SIZE + REGS_SIZE + MM_SIZE + (vmaCount + 1) * VMA_SIZE + dumpedPageCount * RECORD_SIZE + TRAILER_SIZE;
}

export function dumpLayout(snapshot: Snapshot): Layout {
  const leader = snapshot.threads[0];
  const head = Buffer.concat([
    encodeHeader(),
    encodeRegs(leader.regs, leader.tls),
    encodeMm(snapshot.mm),
    ...snapshot.vmas.map(encodeVma),
    VMA_TERMINATOR,
  ]);
  return new LayoutBuilder()
    .bytes(head)
    .records(dumpedPages(snapshot.vmas, snapshot.pages))
    .zeros(TRAILER_SIZE)
    .build();
}

export const dumpFile: FileKind = {
  name: 'dump',
  layout: dumpLayout,
  previewSize(pid) {
    const { vmas, pages } = readMemoryLayout(pid);
    return dumpSize(vmas.length, dumpedPages(vmas, pages).totalPages);
  },
};
