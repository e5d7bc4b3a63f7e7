// struct user_desc (<asm/ldt.h>), the TLS descriptor ptrace, set_thread_area and the image
// extension exchange.

import type { UserDesc } from './model.js';

/** sizeof(struct user_desc). */
export const USER_DESC_SIZE = 16;

/** struct user_desc: entry, base, limit, then the flag bits of <asm/ldt.h>. */
export function decodeUserDesc(buf: Buffer, at: number): UserDesc {
  const bits = buf.readUInt32LE(at + 12);
  return {
    entryNumber: buf.readUInt32LE(at),
    baseAddr: buf.readUInt32LE(at + 4),
    limit: buf.readUInt32LE(at + 8),
    seg32bit: (bits & 1) !== 0,
    contents: (bits >> 1) & 3,
    readExecOnly: (bits & 8) !== 0,
    limitInPages: (bits & 16) !== 0,
    segNotPresent: (bits & 32) !== 0,
    useable: (bits & 64) !== 0,
  };
}

export function encodeUserDesc(buf: Buffer, at: number, d: UserDesc): void {
  buf.writeUInt32LE(d.entryNumber >>> 0, at);
  buf.writeUInt32LE(d.baseAddr >>> 0, at + 4);
  buf.writeUInt32LE(d.limit >>> 0, at + 8);
  const bits = (d.seg32bit ? 1 : 0) | ((d.contents & 3) << 1) | (d.readExecOnly ? 8 : 0) |
    (d.limitInPages ? 16 : 0) | (d.segNotPresent ? 32 : 0) | (d.useable ? 64 : 0);
  buf.writeUInt32LE(bits, at + 12);
}
