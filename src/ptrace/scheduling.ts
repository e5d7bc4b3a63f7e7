// How a thread is scheduled, read and set from outside it: its policy, priority and nice value
// (sched_getattr/sched_setattr), the CPUs it may run on, its I/O priority and its timer slack.

import { readFileSync } from 'node:fs';
import { CPU_MASK_MAX, type ThreadScheduling } from '../extension-model.js';
import { check, rawSyscall } from './libc.js';
import { SYS } from './syscalls.js';

const IOPRIO_WHO_PROCESS = 1;
/** struct sched_attr as of Linux 5.3 (SCHED_ATTR_SIZE_VER1). */
const SCHED_ATTR_SIZE = 56;
const SCHED_FLAG_UTIL_CLAMP = 0x20 | 0x40;

/** struct sched_attr's fields, as a thread's scheduling records them. */
export type SchedAttr = Omit<ThreadScheduling, 'cpus' | 'ioprio' | 'timerSlackNs'>;

export function getSchedAttr(tid: number): SchedAttr {
  const attr = Buffer.alloc(SCHED_ATTR_SIZE);
  check(Number(rawSyscall(SYS.sched_getattr, 'int', tid, 'void *', attr, 'unsigned int', SCHED_ATTR_SIZE, 'unsigned int', 0)), () => `sched_getattr(${tid})`);
  return {
    policy: attr.readUInt32LE(4), flags: attr.readBigUInt64LE(8), nice: attr.readInt32LE(16), priority: attr.readUInt32LE(20),
    runtime: attr.readBigUInt64LE(24), deadline: attr.readBigUInt64LE(32), period: attr.readBigUInt64LE(40),
    utilMin: attr.readUInt32LE(48), utilMax: attr.readUInt32LE(52),
  };
}

/**
 * Sets what getSchedAttr read; the utilization clamps too if asked (a kernel without them refuses
 * any request that sets them).
 */
export function setSchedAttr(tid: number, s: SchedAttr, clamped: boolean): void {
  const attr = Buffer.alloc(SCHED_ATTR_SIZE);
  attr.writeUInt32LE(SCHED_ATTR_SIZE, 0);
  attr.writeUInt32LE(s.policy, 4);
  attr.writeBigUInt64LE(s.flags | (clamped ? BigInt(SCHED_FLAG_UTIL_CLAMP) : 0n), 8);
  attr.writeInt32LE(s.nice, 16);
  attr.writeUInt32LE(s.priority, 20);
  attr.writeBigUInt64LE(s.runtime, 24);
  attr.writeBigUInt64LE(s.deadline, 32);
  attr.writeBigUInt64LE(s.period, 40);
  attr.writeUInt32LE(s.utilMin, 48);
  attr.writeUInt32LE(s.utilMax, 52);
  check(Number(rawSyscall(SYS.sched_setattr, 'int', tid, 'void *', attr, 'unsigned int', 0)), () => `sched_setattr(${tid})`);
}

/** The CPUs the thread may run on: bit n of the mask is CPU n, as many bytes as the kernel has CPUs for. */
export function getAffinity(tid: number): Buffer {
  const mask = Buffer.alloc(CPU_MASK_MAX);
  const length = check(Number(rawSyscall(SYS.sched_getaffinity, 'int', tid, 'unsigned int', CPU_MASK_MAX, 'void *', mask)), () => `sched_getaffinity(${tid})`);
  return mask.subarray(0, length);
}

export function setAffinity(tid: number, mask: Buffer): void {
  check(Number(rawSyscall(SYS.sched_setaffinity, 'int', tid, 'unsigned int', mask.length, 'void *', mask)), () => `sched_setaffinity(${tid})`);
}

/** Bytes of every affinity mask on this machine. */
export function affinityMaskBytes(): number {
  return getAffinity(0).length;
}

/** The I/O priority: class << 13 | level (IOPRIO_PRIO_VALUE); 0: none set, it follows the nice value. */
export function getIoPriority(tid: number): number {
  return check(Number(rawSyscall(SYS.ioprio_get, 'int', IOPRIO_WHO_PROCESS, 'int', tid)), () => `ioprio_get(${tid})`);
}

export function setIoPriority(tid: number, ioprio: number): void {
  check(Number(rawSyscall(SYS.ioprio_set, 'int', IOPRIO_WHO_PROCESS, 'int', tid, 'int', ioprio)), () => `ioprio_set(${tid}, ${ioprio})`);
}

/** The thread's timer slack in nanoseconds (/proc/<tid>/timerslack_ns, which a tracer may read). */
export function getTimerSlack(tid: number): bigint {
  return BigInt(readFileSync(`/proc/${tid}/timerslack_ns`, 'latin1').trim());
}
