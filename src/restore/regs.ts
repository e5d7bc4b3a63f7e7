// The registers of a restored leader when the image has no extension (which holds them as
// user_regs_struct): what the v0 record encodes, segment codes turned back into selectors and
// TLS descriptor words back into user_desc.

import type { DecodedRegs } from '../format.js';
import {
  CKPT_X86_SEG_LDT, CKPT_X86_SEG_NULL, CKPT_X86_SEG_TLS, CKPT_X86_SEG_USER32_CS, CKPT_X86_SEG_USER32_DS,
  CKPT_X86_SEG_USER64_CS, CKPT_X86_SEG_USER64_DS, GDT_ENTRY_TLS_MIN, SELECTOR_LDT_BIT, SELECTOR_RPL_USER, USER32_CS_SELECTOR,
  USER_CS_SELECTOR, USER_DS_SELECTOR,
} from '../format.js';
import type { UserDesc, UserRegs } from '../model.js';

/** The selector a v0 segment code stands for (decodeSegment has vouched for the code). */
function selector(code: number): bigint {
  switch (code) {
    case CKPT_X86_SEG_NULL: return 0n;
    case CKPT_X86_SEG_USER32_CS: return BigInt(USER32_CS_SELECTOR);
    case CKPT_X86_SEG_USER32_DS: // the same selector as USER64_DS on x86_64
    case CKPT_X86_SEG_USER64_DS: return BigInt(USER_DS_SELECTOR);
    case CKPT_X86_SEG_USER64_CS: return BigInt(USER_CS_SELECTOR);
  }
  if ((code & ~0x1fff) === CKPT_X86_SEG_LDT) return BigInt(((code & 0x1fff) << 3) | SELECTOR_LDT_BIT | SELECTOR_RPL_USER);
  return BigInt(((GDT_ENTRY_TLS_MIN + (code & ~CKPT_X86_SEG_TLS)) << 3) | SELECTOR_RPL_USER);
}

/** The user_desc whose descriptor encodeTls packed into `word` (0: an unused entry). */
export function decodeTls(word: bigint, entryNumber: number): UserDesc {
  if (word === 0n) {
    return {
      entryNumber, baseAddr: 0, limit: 0, seg32bit: false, contents: 0, readExecOnly: true,
      limitInPages: false, segNotPresent: true, useable: false,
    };
  }
  const a = Number(word >> 32n);
  const b = Number(word & 0xffff_ffffn);
  const type = (b >>> 8) & 0xf;
  return {
    entryNumber,
    baseAddr: (((a >>> 16) & 0xffff) | ((b & 0xff) << 16) | (((b >>> 24) & 0xff) << 24)) >>> 0,
    limit: ((a & 0xffff) | (((b >>> 16) & 0xf) << 16)) >>> 0,
    seg32bit: ((b >>> 22) & 1) === 1,
    contents: (type >>> 2) & 3,
    readExecOnly: ((type >>> 1) & 1) === 0,
    limitInPages: ((b >>> 23) & 1) === 1,
    segNotPresent: ((b >>> 15) & 1) === 0,
    useable: ((b >>> 20) & 1) === 1,
  };
}

export interface ThreadRegisters {
  regs: UserRegs;
  /** GDT TLS entries 12..14. */
  tls: UserDesc[];
}

/** The leader's registers as the v0 record holds them. */
export function registersFromV0(v0: DecodedRegs): ThreadRegisters {
  const regs: UserRegs = {
    r15: v0.r15, r14: v0.r14, r13: v0.r13, r12: v0.r12, rbp: v0.bp, rbx: v0.bx, r11: v0.r11, r10: v0.r10,
    r9: v0.r9, r8: v0.r8, rax: v0.ax, rcx: v0.cx, rdx: v0.dx, rsi: v0.si, rdi: v0.di, orig_rax: v0.orig_ax,
    rip: v0.ip, cs: selector(v0.cs), eflags: v0.flags, rsp: v0.sp, ss: selector(v0.ss),
    // v0 keeps a base only when no selector is loaded: then the base is the whole story.
    fs_base: v0.fsindex === CKPT_X86_SEG_NULL ? v0.fs : 0n,
    gs_base: v0.gsindex === CKPT_X86_SEG_NULL ? v0.gs : 0n,
    ds: selector(v0.ds), es: selector(v0.es), fs: selector(v0.fsindex), gs: selector(v0.gsindex),
  };
  return { regs, tls: v0.tls.map((word, i) => decodeTls(word, GDT_ENTRY_TLS_MIN + i)) };
}

