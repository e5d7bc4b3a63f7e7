// A thread's seccomp filters, read with ptrace from a thread in a ptrace stop (it needs
// CAP_SYS_ADMIN, which a tracer of a filtered task has anyway to suspend the filters).

import { constants } from 'node:os';
import { NativeError } from './errors.js';
import { ptrace, ptraceBuffer } from './libc.js';
import { BPF_INSTRUCTION_SIZE } from './syscalls.js';

const PTRACE_SECCOMP_GET_FILTER = 0x420c;
const PTRACE_SECCOMP_GET_METADATA = 0x420d;
/** struct seccomp_metadata: u64 filter_off, u64 flags. */
const METADATA_SIZE = 16;
/** The one flag the kernel reports of an installed filter (and takes when installing one). */
export const SECCOMP_FILTER_FLAG_LOG = 2;

export interface InstalledFilter {
  /** The classic BPF program as it was installed, BPF_INSTRUCTION_SIZE bytes per instruction. */
  program: Buffer;
  /** Installed with SECCOMP_FILTER_FLAG_LOG. */
  log: boolean;
}

/**
 * The filters of a thread in seccomp filter mode, oldest first (the order to install them in
 * again). The kernel's get_nth_filter numbers them from the oldest, whatever ptrace(2) says, and
 * answers ENOENT past the newest.
 */
export function readSeccompFilters(tid: number): InstalledFilter[] {
  const filters: InstalledFilter[] = [];
  for (let index = 0; ; index++) {
    let count: number;
    try {
      count = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, 0); // data NULL: the length only
    } catch (err) {
      if (err instanceof NativeError && err.errno === constants.errno.ENOENT && index > 0) return filters;
      throw err;
    }
    const program = Buffer.alloc(count * BPF_INSTRUCTION_SIZE);
    ptraceBuffer(PTRACE_SECCOMP_GET_FILTER, tid, index, program);
    const metadata = Buffer.alloc(METADATA_SIZE);
    metadata.writeBigUInt64LE(BigInt(index), 0);
    ptraceBuffer(PTRACE_SECCOMP_GET_METADATA, tid, METADATA_SIZE, metadata);
    filters.push({ program, log: (metadata.readBigUInt64LE(8) & BigInt(SECCOMP_FILTER_FLAG_LOG)) !== 0n });
  }
}
