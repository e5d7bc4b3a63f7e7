// The dump file: the binfmt_img v0 image of a snapshot, as a layout of extents.
//   header | regs | mm | vma records | zero vma record | page records | 8 zero bytes | extension
// The extension (src/extension.ts) follows the v0 terminator unless the mount is --strict-v0; the
// page records of its SHARED_PAGES records are records extents, like v0's page records, and its
// VMA_FLAGS record's entries a deferred extent (smaps is read only if they are).

import {
  HEADER_SIZE, MM_SIZE, PAGE_RECORD_SIZE, REGS_SIZE, TRAILER_SIZE, VMA_SIZE, VMA_TERMINATOR,
  carriesPages, encodeHeader, encodeMm, encodeRegs, encodeVma,
} from './format.js';
import { extensionPieces } from './extension.js';
import { Layout, LayoutBuilder } from './extents.js';
import type { Snapshot, Vma } from './model.js';
import { PageIndex } from './pageindex.js';

/** The pages a v0 dump carries: those of its private, readable-by-design VMAs. */
function dumpedPages(vmas: readonly Vma[], pages: PageIndex): PageIndex {
  return pages.restrict(vmas.filter(carriesPages).map((v): [number, number] => [v.start, v.end]));
}

/** Size of the v0 image of a process with these VMAs and pages. */
export function v0Size(vmas: readonly Vma[], pages: PageIndex): number {
  const dumpedPageCount = dumpedPages(vmas, pages).totalPages;
  return HEADER_SIZE + REGS_SIZE + MM_SIZE + (vmas.length + 1) * VMA_SIZE + dumpedPageCount * PAGE_RECORD_SIZE + TRAILER_SIZE;
}

/** The v0 image of the snapshot, followed by its extension unless strictV0. */
export function dumpLayout(snapshot: Snapshot, strictV0: boolean): Layout {
  const leader = snapshot.threads[0];
  const head = Buffer.concat([
    encodeHeader(),
    encodeRegs(leader.regs, leader.tls),
    encodeMm(snapshot.mm),
    ...snapshot.vmas.map(encodeVma),
    VMA_TERMINATOR,
  ]);
  const builder = new LayoutBuilder()
    .bytes(head)
    .records(dumpedPages(snapshot.vmas, snapshot.pages))
    .zeros(TRAILER_SIZE);
  if (!strictV0) {
    // The shared memory's pages, like v0's, are read from the target only when read.
    for (const piece of extensionPieces(snapshot.restore)) {
      if (piece instanceof PageIndex) builder.records(piece);
      else if (Buffer.isBuffer(piece)) builder.bytes(piece);
      else builder.deferred(piece.length, () => piece.produce());
    }
  }
  return builder.build();
}
