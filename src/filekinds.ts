// The files of a process's directory. Each is a layout over a snapshot (imagegen.ts, coregen.ts),
// and the size a snapshot taken now would give it, read from /proc without freezing anything: the
// kernel asks for a file's size before the open that takes the snapshot.

import { coreLayout, coreSize } from './coregen.js';
import { readCoreShape } from './coreinfo.js';
import { dumpLayout, v0Size } from './imagegen.js';
import { previewExtensionSize } from './restoreinfo.js';
import type { FileKind } from './sessions.js';
import { previewMemoryLayout } from './snapshot.js';

/** The dump file: the v0 image with the extension, or without it for a --strict-v0 mount. */
export function dumpFile(strictV0: boolean): FileKind {
  return {
    name: 'dump',
    layout: (snapshot) => dumpLayout(snapshot, strictV0),
    previewSize(pid) {
      const { vmas, pages } = previewMemoryLayout(pid);
      return v0Size(vmas, pages) + (strictV0 ? 0 : previewExtensionSize(pid, vmas));
    },
  };
}

/**
 * How long a core's snapshot outlives its last close. gdb opens a core two or three times, closing
 * it in between (its symbols loaded meanwhile: 6–90 ms between a close and the next open, by
 * hand, on a loaded machine): each open a new snapshot, it would read one's program headers and
 * another's memory, and a process that maps or unmaps memory meanwhile would come out as garbled
 * backtraces.
 */
const CORE_KEPT_AFTER_CLOSE_MS = 1000;

/** The ELF core file. */
export const coreFile: FileKind = {
  name: 'core',
  layout: coreLayout,
  previewSize: (pid) => coreSize(readCoreShape(pid)),
  keptAfterCloseMs: CORE_KEPT_AFTER_CLOSE_MS,
};
