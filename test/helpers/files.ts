// Asynchronous reads of files on the mount (never readFileSync: see run.ts).

import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const CHUNK = 1 << 20;

/** Reads a whole file by read() calls until end of file, not trusting its stat size. */
export async function readFileAsync(path: string): Promise<Buffer> {
  const handle = await fsp.open(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let position = 0;
    for (;;) {
      const buffer = Buffer.alloc(CHUNK);
      const { bytesRead } = await handle.read(buffer, 0, CHUNK, position);
      if (bytesRead === 0) break;
      chunks.push(buffer.subarray(0, bytesRead));
      position += bytesRead;
    }
    return Buffer.concat(chunks);
  } finally {
    await handle.close();
  }
}

/** Up to length bytes from offset (fewer only at end of file). */
export async function readSlice(path: string, offset: number, length: number): Promise<Buffer> {
  const handle = await fsp.open(path, 'r');
  try {
    return await readAt(handle, offset, length);
  } finally {
    await handle.close();
  }
}

/** Up to length bytes from offset of an open file, looping over short reads. */
export async function readAt(handle: fsp.FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

/** The errno code (e.g. 'EIO') a promise rejects with, or undefined if it resolves. */
export async function errnoOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined) throw err;
    return code;
  }
}

/** A fresh directory under /tmp, removed with its contents when the test ends. */
export async function makeTempDir(t: { teardown(fn: () => unknown): void }, prefix = 'imgfs-work-'): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Opens a file for the test's lifetime (closed in teardown if the test has not closed it). */
export async function openHeld(t: { teardown(fn: () => unknown): void }, file: string): Promise<fsp.FileHandle> {
  const handle = await fsp.open(file, 'r');
  t.teardown(() => handle.close().catch(() => undefined));
  return handle;
}

/** The whole file through an open handle, by read() until end of file. */
export async function readWhole(handle: fsp.FileHandle): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let offset = 0; ; ) {
    const chunk = await readAt(handle, offset, 1 << 20);
    if (chunk.length === 0) return Buffer.concat(chunks);
    chunks.push(chunk);
    offset += chunk.length;
  }
}
