// Seccomp filters, given back to each restored thread as its last injected calls but its
// credentials: from then on they would judge every call we inject, so they are suspended
// (PTRACE_O_SUSPEND_SECCOMP) until the threads are let go.

import type { SeccompFilter, ThreadSeccomp } from '../extension-model.js';
import { NativeError } from '../ptrace/errors.js';
import { SECCOMP_FILTER_FLAG_LOG } from '../ptrace/seccomp.js';
import type { RemoteTask } from '../ptrace/remote.js';
import { RestoreError } from './errors.js';
import { SECCOMP_MODE_STRICT } from '../ptrace/syscalls.js';

const PR_SET_SECCOMP = 22;

/** Suspends seccomp for the leader and the threads it creates next: before any filter is set. */
export function suspendSeccomp(leader: RemoteTask): void {
  try {
    leader.suspendSeccomp();
  } catch (err) {
    if (!(err instanceof NativeError)) throw err;
    throw new RestoreError(`the process ran under seccomp, and restoring its filters needs CAP_SYS_ADMIN outside any seccomp filter (PTRACE_O_SUSPEND_SECCOMP: ${err.message})`);
  }
}

/** Puts the thread in its dumped seccomp mode, its filters installed oldest first. */
export function setSeccomp(thread: RemoteTask, seccomp: ThreadSeccomp, filters: readonly SeccompFilter[]): void {
  if (seccomp.mode === 'strict') {
    thread.prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT);
    return;
  }
  for (const index of seccomp.filters) {
    const { program, log } = filters[index];
    thread.addSeccompFilter(program, log ? SECCOMP_FILTER_FLAG_LOG : 0);
  }
}
