// 64-bit values kept as two u32 words, low word first, and held in a number: an iovec's base in a
// Uint32Array, a page record's address, the file offsets fuse and the cpuid driver split. Exact
// up to 2^53, above every user address (below 2^47) and every offset these stand for.

const TWO_POW_32 = 2 ** 32;

/** The value whose low and high u32 words these are. */
export function fromWords(low: number, high: number): number {
  return high * TWO_POW_32 + low;
}

/** The high u32 word of n; the low one is n >>> 0. */
export function highWord(n: number): number {
  return Math.floor(n / TWO_POW_32);
}
