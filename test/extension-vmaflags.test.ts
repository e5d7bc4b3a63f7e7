// The VMA_FLAGS record: a round trip, a dump's deferred form encoding to the same bytes (and
// reading the flags only when asked), older images without it, bad records, and `imgfs show`.

import test from 'ava';
import { decodeExtension, encodeExtension, extensionPieces, RecordType, VMA_FLAGS } from '../src/extension.js';
import type { VmaFlags } from '../src/extension-model.js';
import { formatImage, readImage } from '../src/show.js';
import { fullSampleExtension, recordOffsets, SAMPLE_VMA_FLAGS, sampleExtension, sampleV0Prefix } from './helpers/extension-sample.js';

test('round trip; an image without the record (an older one) decodes without VMA flags', (t) => {
  t.deepEqual(decodeExtension(encodeExtension(fullSampleExtension())).vmaFlags, SAMPLE_VMA_FLAGS);
  t.is(decodeExtension(encodeExtension(sampleExtension())).vmaFlags, undefined);
});

test('a deferred record encodes to the same bytes, and its flags are read only when its bytes are made', (t) => {
  let reads = 0;
  const read = (): VmaFlags[] => {
    reads++;
    return SAMPLE_VMA_FLAGS;
  };
  const deferred = { ...fullSampleExtension(), vmaFlags: { count: SAMPLE_VMA_FLAGS.length, read } };
  const pieces = extensionPieces(deferred);
  t.is(reads, 0, 'laying the extension out reads nothing');
  t.is(pieces.filter((p) => !Buffer.isBuffer(p) && 'produce' in p).length, 1, 'one deferred piece');
  t.deepEqual(encodeExtension(deferred), encodeExtension(fullSampleExtension()));
  t.is(reads, 1);
  const short = { ...deferred, vmaFlags: { count: SAMPLE_VMA_FLAGS.length + 1, read } };
  t.throws(() => encodeExtension(short), { message: /made, \d+ promised/ });
});

test('byte layout and bad records', (t) => {
  const buf = encodeExtension(fullSampleExtension());
  const at = recordOffsets(buf).find((r) => r.type === RecordType.VMA_FLAGS)!.at;
  t.is(buf.readUInt32LE(at + 4), SAMPLE_VMA_FLAGS.length * 16);
  SAMPLE_VMA_FLAGS.forEach(({ start, flags }, i) => {
    t.is(Number(buf.readBigUInt64LE(at + 8 + i * 16)), start);
    t.is(buf.readUInt32LE(at + 8 + i * 16 + 8), flags);
    t.is(buf.readUInt32LE(at + 8 + i * 16 + 12), 0);
  });
  const patched = (pos: number, value: number, width: 4 | 8 = 4) => {
    const copy = Buffer.from(buf);
    if (width === 4) copy.writeUInt32LE(value, pos);
    else copy.writeBigUInt64LE(BigInt(value), pos);
    return copy;
  };
  const entry = (i: number) => at + 8 + i * 16;
  t.is(t.throws(() => decodeExtension(patched(entry(1) + 8, 1 << 15)))?.message, `byte ${entry(1) + 8}: VMA_FLAGS record: unknown VMA flags 0x8000`);
  t.is(t.throws(() => decodeExtension(patched(entry(2) + 12, 1)))?.message, `byte ${entry(2) + 12}: VMA_FLAGS record: pad is not 0`);
  t.is(t.throws(() => decodeExtension(patched(entry(1), 0x7f00_0010_0800, 8)))?.message,
    `byte ${entry(1)}: VMA_FLAGS record: VMA start 0x7f0000100800 is not page-aligned`);
  t.is(t.throws(() => decodeExtension(patched(entry(1), 0x1000, 8)))?.message,
    `byte ${entry(1)}: VMA_FLAGS record: VMA start 0x1000 is not above the previous one`);
  t.throws(() => encodeExtension({ ...sampleExtension(), vmaFlags: [{ start: 0x1000, flags: 1 << 16 }] }), { message: /unknown VMA flags 0x10000/ });
});

test('the flag bits are distinct, each with its smaps mnemonic', (t) => {
  t.is(new Set(VMA_FLAGS.map((f) => f.bit)).size, VMA_FLAGS.length);
  t.deepEqual(VMA_FLAGS.map((f) => f.mnemonic), ['lo', 'dc', 'wf', 'dd', 'hg', 'nh', 'mg', 'sr', 'rr', 'lf', 'gd', 'sl', 'um', 'uw', 'ui']);
});

test('imgfs show lists the VMAs with any flag, by name', async (t) => {
  const text = formatImage(await readImage([Buffer.concat([sampleV0Prefix(), encodeExtension(fullSampleExtension())])]));
  t.regex(text, /VMA flags \(3 of the VMAs have any\)/);
  t.regex(text, /7f0000100000 wipeonfork\n/);
  t.regex(text, /7f0000200000 locked dontdump hugepage\n/);
  t.regex(text, /7ffd00000000 locked dontfork wipeonfork dontdump hugepage nohugepage mergeable sequential random\n/);
});
