// A thread's dumped XSAVE area, made to fit this CPU. ptrace takes only a standard-format area of
// exactly this CPU's size holding features this CPU has, so an image from a CPU with another
// layout (AVX-512 or AMX state, PKRU at another offset) would lose all its vector state. What the
// architecture fixes for every CPU carries over: the legacy area (x87 and SSE), the header, and
// the upper halves of the AVX registers at 576; every other feature starts in its initial state.

import { XSAVE_SW_RESERVED_OFFSET, XSAVE_XCR0_OFFSET } from '../elfnotes.js';

const HEADER_OFFSET = 512;
const AVX_OFFSET = 576;
const AVX_END = 832;
const X87 = 1n;
const SSE = 2n;
const AVX = 4n;

export interface FittedXstate {
  xstate: Buffer;
  /** Features the dumped area held that this one starts in their initial state (XCR0 bits). */
  dropped: bigint;
}

/** dumped made to fit local, an XSAVE area of this CPU (any thread's: only its shape counts). */
export function fitXstate(dumped: Buffer, local: Buffer): FittedXstate {
  const localFeatures = local.readBigUInt64LE(XSAVE_XCR0_OFFSET);
  // Too short to hold a header: not an XSAVE area; ptrace judges it as it is.
  if (dumped.length < AVX_OFFSET) return { xstate: dumped, dropped: 0n };
  const dumpedFeatures = dumped.readBigUInt64LE(XSAVE_XCR0_OFFSET);
  if (dumped.length === local.length && dumpedFeatures === localFeatures) return { xstate: dumped, dropped: 0n };
  const kept = dumpedFeatures & localFeatures & (X87 | SSE | AVX);
  const fitted = Buffer.alloc(local.length);
  dumped.copy(fitted, 0, 0, XSAVE_SW_RESERVED_OFFSET);
  local.copy(fitted, XSAVE_SW_RESERVED_OFFSET, XSAVE_SW_RESERVED_OFFSET, HEADER_OFFSET);
  fitted.writeBigUInt64LE(dumped.readBigUInt64LE(HEADER_OFFSET) & kept, HEADER_OFFSET);
  if (kept & AVX) dumped.copy(fitted, AVX_OFFSET, AVX_OFFSET, AVX_END);
  return { xstate: fitted, dropped: dumpedFeatures & ~kept };
}
