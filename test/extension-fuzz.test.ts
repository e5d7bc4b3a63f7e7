// Mutated extensions must decode or end in an ExtensionFormatError at an offset inside the input:
// never another exception, never a hang. Through `imgfs show` the same holds with ImageFormatError.

import test from 'ava';
import { ExtensionFormatError, decodeExtension, encodeExtension } from '../src/extension.js';
import { ImageFormatError, formatImage, imageToJson, readImage } from '../src/show.js';
import { fullSampleExtension, sampleV0Prefix } from './helpers/extension-sample.js';
import { prng } from './helpers/prng.js';

const ITERATIONS = 6000;
const SEED = 0x5eed_e7e7;
const BASE = 4096;

type Rng = () => number;
const below = (rng: Rng, n: number) => Math.floor(rng() * n);

/** Offsets of every record header and fixed field, where a mutation changes the structure. */
function structuredOffsets(buf: Buffer): number[] {
  const out = Array.from({ length: 16 }, (_, i) => i);
  let pos = 16;
  while (pos + 8 <= buf.length) {
    const length = buf.readUInt32LE(pos + 4);
    for (let i = 0; i < Math.min(8 + 48, 8 + length); i++) out.push(pos + i);
    pos += 8 + Math.ceil(length / 8) * 8;
  }
  return out;
}

function mutate(rng: Rng, base: Buffer, structured: number[]): Buffer {
  const buf = Buffer.from(base);
  const at = () => (rng() < 0.25 ? below(rng, buf.length) : structured[below(rng, structured.length)]);
  switch (below(rng, 6)) {
    case 0: {
      for (let i = 1 + below(rng, 4); i > 0; i--) buf[at()] ^= 1 << below(rng, 8);
      return buf;
    }
    case 1:
      return buf.subarray(0, below(rng, buf.length + 1));
    case 2: {
      const where = at();
      const inserted = Buffer.alloc(1 + below(rng, 40), below(rng, 2) ? 0 : below(rng, 256));
      return Buffer.concat([buf.subarray(0, where), inserted, buf.subarray(where)]);
    }
    case 3: {
      const where = at();
      return Buffer.concat([buf.subarray(0, where), buf.subarray(where + 1 + below(rng, 40))]);
    }
    case 4: { // a random word, often a plausible small length or count
      const where = Math.min(at(), buf.length - 4);
      buf.writeUInt32LE(below(rng, 2) ? below(rng, 4096) : below(rng, 2 ** 32), where);
      return buf;
    }
    default: { // keep the header's length in step with an edited body, so the records get parsed
      const edited = mutate(rng, base, structured);
      if (edited.length >= 16) edited.writeBigUInt64LE(BigInt(edited.length), 8);
      return edited;
    }
  }
}

test('mutated extensions decode or throw ExtensionFormatError, nothing else', (t) => {
  const base = encodeExtension(fullSampleExtension());
  const structured = structuredOffsets(base);
  const rng = prng(SEED);
  const outcomes = { ok: 0, formatError: 0 };
  for (let i = 0; i < ITERATIONS; i++) {
    const buf = mutate(rng, base, structured);
    const started = Date.now();
    try {
      encodeExtension(decodeExtension(buf, BASE));
      outcomes.ok++;
    } catch (err) {
      if (!(err instanceof ExtensionFormatError)) {
        t.fail(`iteration ${i}: ${err instanceof Error ? err.stack : String(err)}`);
        return;
      }
      t.true(Number.isInteger(err.offset) && err.offset >= BASE && err.offset <= BASE + buf.length, `iteration ${i}: ${err.message}`);
      t.false(err.message.includes('\n'), `iteration ${i}: one line`);
      outcomes.formatError++;
    }
    t.true(Date.now() - started < 1000, `iteration ${i} took too long`);
  }
  t.log(outcomes);
  t.true(outcomes.ok > 0 && outcomes.formatError > ITERATIONS / 4, JSON.stringify(outcomes));
});

test('imgfs show on mutated extensions: a summary or one ImageFormatError line', async (t) => {
  const prefix = sampleV0Prefix();
  const base = encodeExtension(fullSampleExtension());
  const structured = structuredOffsets(base);
  const rng = prng(SEED + 1);
  let errors = 0;
  for (let i = 0; i < ITERATIONS / 6; i++) {
    const image = Buffer.concat([prefix, mutate(rng, base, structured)]);
    const chunks = Array.from({ length: Math.ceil(image.length / 777) }, (_, k) => image.subarray(k * 777, (k + 1) * 777));
    try {
      const summary = await readImage(chunks);
      t.is(summary.size, image.length);
      formatImage(summary);
      imageToJson(summary);
    } catch (err) {
      if (!(err instanceof ImageFormatError)) {
        t.fail(`iteration ${i}: ${err instanceof Error ? err.stack : String(err)}`);
        return;
      }
      t.true(err.offset >= prefix.length && err.offset <= image.length, `iteration ${i}: ${err.message}`);
      errors++;
    }
  }
  t.true(errors > 0);
});
