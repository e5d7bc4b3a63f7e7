// An image's bytes as the image reader gets them: chunks of chosen sizes and, from the same
// position of the same stream, scatter reads (RecordScatter) of chosen lengths, as restore's input
// gives them with readv. Every chunk and scatter buffer is fresh: the reader must not rely on
// bytes it has moved past.

import { PAGE_RECORD_SIZE } from '../../src/format.js';
import type { PageBatch, RecordScatter } from '../../src/imagestream.js';

const PAGE = 4096;
/** Page records per scatter read, as restore's input reads them. */
const SCATTER_RECORDS = 512;
/** A byte no image test writes: what scatter buffers hold where nothing was read. */
const UNREAD = 0xee;

export interface ImageStream {
  chunks: Generator<Uint8Array>;
  scatter: RecordScatter;
}

/**
 * chunkSize: the length of each next chunk. scatterLength: of each scatter read, given what a
 * whole read would take (a file gives it all; a pipe may give less).
 */
export function imageStream(bytes: Buffer, chunkSize: () => number, scatterLength: (whole: number) => number = (whole) => whole): ImageStream {
  let at = 0;
  function* chunks(): Generator<Uint8Array> {
    while (at < bytes.length) {
      const size = Math.max(1, chunkSize());
      const chunk = Buffer.from(bytes.subarray(at, at + size));
      at += chunk.length;
      yield chunk;
    }
  }
  const scatter: RecordScatter = async (start) => {
    const words = Buffer.alloc(SCATTER_RECORDS * 8, UNREAD);
    const pages = Buffer.alloc(SCATTER_RECORDS * PAGE, UNREAD);
    const whole = Math.min(SCATTER_RECORDS * PAGE_RECORD_SIZE - start.length, bytes.length - at);
    const length = Math.min(whole, Math.max(0, scatterLength(whole)));
    const read = Buffer.concat([start, bytes.subarray(at, at + length)]);
    for (let i = 0; i < read.length; i++) {
      const record = Math.floor(i / PAGE_RECORD_SIZE);
      const within = i % PAGE_RECORD_SIZE;
      if (within < 8) words[record * 8 + within] = read[i];
      else pages[record * PAGE + within - 8] = read[i];
    }
    at += length;
    return { words, pages, bytes: read.length };
  };
  return { chunks: chunks(), scatter };
}

/** Page i of a batch. */
export function batchPage(batch: PageBatch, i: number): Buffer {
  const from = batch.firstPage + i * batch.stride;
  return batch.bytes.subarray(from, from + PAGE);
}
