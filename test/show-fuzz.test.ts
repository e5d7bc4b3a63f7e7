// Mutated images must end in a result or an ImageFormatError: never another exception, never a hang.

import test from 'ava';
import { PAGE_RECORD_SIZE, VMA_TERMINATOR, encodeHeader, encodeMm, encodeRegs, encodeVma } from '../src/format.js';
import type { UserRegs, Vma } from '../src/model.js';
import { ImageFormatError, formatImage, readImage } from '../src/show.js';
import { prng } from './helpers/prng.js';

const ITERATIONS = 4000;
const SEED = 0x1d2c3b4a;

function baseImage(): Buffer {
  const regs = Object.fromEntries(
    ['r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi',
      'orig_rax', 'rip', 'eflags', 'rsp', 'fs_base', 'gs_base'].map((n, i) => [n, BigInt(i) * 0x1010n]),
  ) as Record<string, bigint>;
  const full = { ...regs, cs: 0x33n, ss: 0x2bn, ds: 0n, es: 0n, fs: 0n, gs: 0x63n } as UserRegs;
  const vma = (start: number, pages: number, name: string): Vma => ({
    start, end: start + pages * 4096, read: true, write: true, exec: false, mayShare: false, offset: 0,
    dev: '00:00', inode: 0, name, vmFlags: new Set(),
  });
  const vmas = [vma(0x400000, 2, '/bin/x'), vma(0x600000, 4, '[heap]'), vma(0x7ffd00000000, 3, '[stack]')];
  const pages = [0x400000, 0x601000, 0x603000, 0x7ffd00002000].map((addr, i) => {
    const record = Buffer.alloc(PAGE_RECORD_SIZE, 0x11 * (i + 1));
    record.writeBigUInt64LE(BigInt(addr));
    return record;
  });
  return Buffer.concat([
    encodeHeader(),
    encodeRegs(full, [{ entryNumber: 12, baseAddr: 0x1000, limit: 0xfffff, seg32bit: true, contents: 0,
      readExecOnly: false, limitInPages: true, segNotPresent: false, useable: true }]),
    encodeMm({ flags: 0x8000000dn, defFlags: 0n, startCode: 0x400000, endCode: 0x401000, startData: 0x600000,
      endData: 0x600100, startBrk: 0x601000, brk: 0x604000, startStack: 0x7ffd00002ff0, argStart: 0x7ffd00002000,
      argEnd: 0x7ffd00002010, envStart: 0x7ffd00002010, envEnd: 0x7ffd00002100 }),
    ...vmas.map(encodeVma),
    VMA_TERMINATOR,
    ...pages,
    Buffer.alloc(8),
  ]);
}

type Rng = () => number;
const below = (rng: Rng, n: number) => Math.floor(rng() * n);

/** Most mutations land in the structured bytes (everything but page contents), where they matter. */
function position(rng: Rng, image: Buffer, structured: number[]): number {
  if (rng() < 0.3) return below(rng, image.length);
  return structured[below(rng, structured.length)];
}

function mutate(rng: Rng, base: Buffer, structured: number[]): Buffer {
  const image = Buffer.from(base);
  switch (below(rng, 5)) {
    case 0: { // bit flips
      const flips = 1 + below(rng, 4);
      for (let i = 0; i < flips; i++) {
        const at = position(rng, image, structured);
        image[at] ^= 1 << below(rng, 8);
      }
      return image;
    }
    case 1: // truncation
      return image.subarray(0, below(rng, image.length + 1));
    case 2: { // inserted bytes
      const at = position(rng, image, structured);
      const inserted = Buffer.alloc(1 + below(rng, 64), below(rng, 2) ? 0 : below(rng, 256));
      return Buffer.concat([image.subarray(0, at), inserted, image.subarray(at)]);
    }
    case 3: { // deleted bytes
      const at = position(rng, image, structured);
      return Buffer.concat([image.subarray(0, at), image.subarray(at + 1 + below(rng, 64))]);
    }
    default: { // a random 64-bit word
      const at = Math.min(position(rng, image, structured), image.length - 8);
      image.writeUInt32LE(below(rng, 2 ** 32), at);
      image.writeUInt32LE(below(rng, 3) === 0 ? 0 : below(rng, 2 ** 32), at + 4);
      return image;
    }
  }
}

/** Splits the image at random points, so chunk boundaries fall everywhere. */
function* randomChunks(rng: Rng, image: Buffer): Generator<Buffer> {
  let at = 0;
  while (at < image.length) {
    const size = 1 + below(rng, below(rng, 2) ? 64 : 20000);
    yield image.subarray(at, at + size);
    at += size;
  }
}

test('mutated images give a summary or an ImageFormatError, nothing else', async (t) => {
  const base = baseImage();
  const headerAndVmas = base.length - 4 * PAGE_RECORD_SIZE - 8;
  const structured = [
    ...Array.from({ length: headerAndVmas }, (_, i) => i),
    ...[0, 1, 2, 3].flatMap((i) => Array.from({ length: 8 }, (_, j) => headerAndVmas + i * PAGE_RECORD_SIZE + j)),
    ...Array.from({ length: 8 }, (_, j) => base.length - 8 + j),
  ];
  const rng = prng(SEED);
  const outcomes = { ok: 0, formatError: 0 };
  for (let i = 0; i < ITERATIONS; i++) {
    const image = mutate(rng, base, structured);
    const started = Date.now();
    try {
      const summary = await readImage(randomChunks(rng, image));
      t.is(summary.size, image.length, `iteration ${i}`);
      t.is(summary.pageCount, summary.vmas.reduce((sum, v) => sum + v.pages, 0), `iteration ${i}`);
      formatImage(summary);
      outcomes.ok++;
    } catch (err) {
      if (!(err instanceof ImageFormatError)) {
        t.fail(`iteration ${i}: ${err instanceof Error ? err.stack : String(err)}`);
        return;
      }
      t.true(Number.isInteger(err.offset) && err.offset >= 0 && err.offset <= image.length, `iteration ${i}: ${err.message}`);
      t.false(err.message.includes('\n'), `iteration ${i}: one line`);
      outcomes.formatError++;
    }
    t.true(Date.now() - started < 2000, `iteration ${i} took too long`);
  }
  t.log(outcomes);
  // Both outcomes must occur, or the mutations are not exercising the parser.
  t.true(outcomes.ok > 0 && outcomes.formatError > ITERATIONS / 4);
});
