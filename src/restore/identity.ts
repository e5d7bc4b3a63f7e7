// Who each restored thread is: its name and its credentials (uids, gids, groups, capabilities,
// securebits, no_new_privs), all per thread in Linux. They are taken last, once nothing the
// restore still does needs the restorer's privileges (threads made with their tids, files
// opened, ports bound): a daemon that had dropped to its own user comes back as that user,
// not as the restorer's root.

import { readFileSync } from 'node:fs';
import type { ThreadIdentity } from '../extension-model.js';
import type { RemoteTask } from '../ptrace/remote.js';

const PR_SET_DUMPABLE = 4;
const PR_CAPBSET_DROP = 24;
const PR_SET_SECUREBITS = 28;
const PR_SET_NO_NEW_PRIVS = 38;
const PR_CAP_AMBIENT = 47;
const PR_CAP_AMBIENT_RAISE = 2;
/** Keeps the capabilities across the uid change, for the steps that need them after it. */
const SECBIT_NO_SETUID_FIXUP = 1 << 2;
/** mm->flags bits 0-1: 0 not dumpable, 1 dumpable, 2 dumpable by root only (suid_dumpable). */
const MMF_DUMPABLE_MASK = 3n;

/** The credentials of a live thread, as its status file shows them (the stub's threads: the restorer's). */
function currentCredentials(tid: number): { ids: string; noNewPrivs: boolean } {
  const status = readFileSync(`/proc/${tid}/status`, 'latin1');
  const field = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1].trim().split(/\s+/).join(' ') ?? '';
  return {
    ids: ['Uid', 'Gid', 'Groups', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'].map(field).join('|'),
    noNewPrivs: field('NoNewPrivs') === '1',
  };
}

/** The dumped credentials but no_new_privs, in currentCredentials' form. */
function recordedIds(identity: ThreadIdentity): string {
  const hex = (set: bigint) => set.toString(16).padStart(16, '0');
  const { caps } = identity;
  return [identity.uids.join(' '), identity.gids.join(' '), identity.groups.join(' '),
    hex(caps.inheritable), hex(caps.permitted), hex(caps.effective), hex(caps.bounding), hex(caps.ambient)].join('|');
}

/** The highest capability number this kernel knows. */
function lastCapability(): number {
  return Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'latin1'));
}

/**
 * Gives the thread its dumped name and credentials. A thread whose credentials are the
 * restorer's already is only named. A restorer that is not root cannot take other credentials:
 * the thread keeps the restorer's, with one warning (it never gets more than the restorer has).
 * no_new_privs cannot be cleared: a restorer that has it (one running under a seccomp filter)
 * passes it on, which the leader's warning says. Any failure once the change has begun is an
 * error: a thread must not run with half of them.
 */
export function setIdentity(thread: RemoteTask, identity: ThreadIdentity, leader: boolean, warn: (line: string) => void): void {
  thread.setName(identity.name);
  const current = currentCredentials(thread.tid);
  if (current.noNewPrivs && !identity.noNewPrivs && leader) warn('the process runs with no_new_privs, which the restorer has and cannot drop');
  const wanted = recordedIds(identity);
  if (current.ids === wanted && identity.securebits === 0) {
    if (identity.noNewPrivs && !current.noNewPrivs) thread.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    return;
  }
  const [uid, gid] = [identity.uids[1], identity.gids[1]];
  if (process.geteuid?.() !== 0) {
    warn(`thread ${thread.tid}: its credentials (uid ${uid}, gid ${gid}) need root to take back: it runs with the restorer's`);
    return;
  }
  const { caps } = identity;
  thread.prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP);
  thread.setgroups(identity.groups);
  thread.setresgid(identity.gids[0], identity.gids[1], identity.gids[2]);
  thread.setfsgid(identity.gids[3]);
  thread.setresuid(identity.uids[0], identity.uids[1], identity.uids[2]);
  thread.setfsuid(identity.uids[3]);
  const last = lastCapability();
  for (let cap = 0; cap <= last; cap++) if (((caps.bounding >> BigInt(cap)) & 1n) === 0n) thread.prctl(PR_CAPBSET_DROP, cap);
  thread.prctl(PR_SET_SECUREBITS, identity.securebits);
  thread.capset(caps.effective, caps.permitted, caps.inheritable);
  for (let cap = 0; cap <= last; cap++) if (((caps.ambient >> BigInt(cap)) & 1n) !== 0n) thread.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
  if (identity.noNewPrivs) thread.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  const now = currentCredentials(thread.tid).ids;
  if (now !== wanted) throw new Error(`thread ${thread.tid}: took credentials ${now}, not the dumped ${wanted}`);
}

/**
 * The dumped process's dumpable mode, which a change of credentials resets (to suid_dumpable): a
 * program that made itself undumpable (ssh-agent, say) stays so. Mode 2 cannot be asked for.
 */
export function setDumpable(leader: RemoteTask, mmFlags: bigint): void {
  const mode = mmFlags & MMF_DUMPABLE_MASK;
  if (mode <= 1n) leader.prctl(PR_SET_DUMPABLE, Number(mode));
}
