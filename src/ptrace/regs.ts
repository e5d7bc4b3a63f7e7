// Register access of a thread in a ptrace stop: the general registers, the GDT TLS entries and
// the regsets (FPU/SSE, XSAVE area).

import koffi from 'koffi';
import { USER_REGS_ORDER, type UserDesc, type UserRegs } from '../model.js';
import {
  PTRACE_GET_THREAD_AREA, PTRACE_GETREGS, PTRACE_GETREGSET, PTRACE_SET_THREAD_AREA, PTRACE_SETREGS, PTRACE_SETREGSET,
  ptraceBuffer,
} from './libc.js';
import { decodeUserDesc, encodeUserDesc, USER_DESC_SIZE } from '../userdesc.js';

/** struct user_regs_struct, word by word. */
const regsBuffer = Buffer.alloc(USER_REGS_ORDER.length * 8);

export function getRegs(tid: number): UserRegs {
  ptraceBuffer(PTRACE_GETREGS, tid, 0, regsBuffer);
  const regs = {} as UserRegs;
  USER_REGS_ORDER.forEach((name, i) => { regs[name] = regsBuffer.readBigUInt64LE(i * 8); });
  return regs;
}

/** Values are taken as 64-bit words: a negative bigint stands for its two's complement. */
export function setRegs(tid: number, regs: UserRegs): void {
  USER_REGS_ORDER.forEach((name, i) => { regsBuffer.writeBigUInt64LE(BigInt.asUintN(64, regs[name]), i * 8); });
  ptraceBuffer(PTRACE_SETREGS, tid, 0, regsBuffer);
}

const userDescBuffer = Buffer.alloc(USER_DESC_SIZE);

/** struct user_desc of GDT entry `entry` (12..14 are the TLS entries). */
export function getThreadArea(tid: number, entry: number): UserDesc {
  ptraceBuffer(PTRACE_GET_THREAD_AREA, tid, entry, userDescBuffer);
  return decodeUserDesc(userDescBuffer, 0);
}

/** Installs a GDT TLS entry in thread tid, as set_thread_area(2) would in the thread itself. */
export function setThreadArea(tid: number, desc: UserDesc): void {
  encodeUserDesc(userDescBuffer, 0, desc);
  ptraceBuffer(PTRACE_SET_THREAD_AREA, tid, desc.entryNumber, userDescBuffer);
}

// 4096 bytes is the usual advice, but AMX tile data alone is 8 KiB: a too small buffer would be
// cut silently by the kernel, so leave room for every state component x86 defines today.
const regsetBuffer = Buffer.alloc(16384);
const iovec = Buffer.alloc(16);

function pointIovec(buffer: Buffer, length: number): void {
  iovec.writeBigUInt64LE(koffi.address(buffer), 0);
  iovec.writeBigUInt64LE(BigInt(length), 8);
}

/** The regset `type` (elfnotes.ts's NT_*), exactly as long as the kernel says it is. */
export function getRegset(tid: number, type: number): Buffer {
  pointIovec(regsetBuffer, regsetBuffer.length);
  ptraceBuffer(PTRACE_GETREGSET, tid, type, iovec);
  return Buffer.from(regsetBuffer.subarray(0, Number(iovec.readBigUInt64LE(8))));
}

export function setRegset(tid: number, type: number, data: Buffer): void {
  pointIovec(data, data.length);
  ptraceBuffer(PTRACE_SETREGSET, tid, type, iovec);
}
