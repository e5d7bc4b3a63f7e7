// Who each restored thread is: its name and its credentials (uids, gids, groups, capabilities,
// securebits, no_new_privs), all per thread in Linux. They are taken last, once nothing the
// restore still does needs the restorer's privileges (threads made with their tids, files
// opened, ports bound): a daemon that had dropped to its own user comes back as that user,
// not as the restorer's root.

import { readFileSync } from 'node:fs';
import type { Credentials, ThreadIdentity } from '../extension-model.js';
import { credentialsText, parseCredentials } from '../proc/credentials.js';
import type { RemoteTask } from '../ptrace/remote.js';
import { PR_GET_SECUREBITS } from '../ptrace/syscalls.js';

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

/** The credentials a live thread has now (the stub's threads: the restorer's). */
function currentCredentials(tid: number): Credentials {
  const where = `/proc/${tid}/status`;
  return parseCredentials(readFileSync(where, 'latin1'), where);
}

let lastCap: number | undefined;

/** The highest capability number this kernel knows. */
function lastCapability(): number {
  return (lastCap ??= Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'latin1')));
}

const CAP_SETGID = 6;
const CAP_SETUID = 7;
const CAP_SETPCAP = 8;
const bit = (cap: number): bigint => 1n << BigInt(cap);
const isSubset = (a: bigint, b: bigint): boolean => (a & ~b) === 0n;

/**
 * What keeps a thread with these credentials from taking the dumped ones, or null: the
 * capabilities that change ids and sets, and no capability the restorer does not hold itself.
 */
function beyondReach(current: Credentials, identity: ThreadIdentity): string | null {
  const needed = bit(CAP_SETUID) | bit(CAP_SETGID) | bit(CAP_SETPCAP);
  if (!isSubset(needed, current.caps.effective)) return 'they need CAP_SETUID, CAP_SETGID and CAP_SETPCAP';
  const { caps } = identity;
  const missing = (caps.permitted | caps.effective | caps.ambient) & ~current.caps.permitted | (caps.bounding & ~current.caps.bounding) |
    (caps.inheritable & ~(current.caps.inheritable | current.caps.bounding));
  return missing === 0n ? null : `they hold capabilities the restorer has not (0x${missing.toString(16)})`;
}

/**
 * Gives the thread its dumped name and credentials. A thread whose credentials are the
 * restorer's already is only named. A restorer that cannot give them (not root, or without some
 * of the capabilities the thread had) leaves the thread its own, with one warning: it never
 * gets more than the restorer has. no_new_privs is set where it was, by anyone; it cannot be
 * cleared: a restorer that has it (one under a seccomp filter) passes it on, which the leader's
 * warning says. Any failure once the change has begun is an error: a thread must not run with
 * half of them.
 */
export function setIdentity(thread: RemoteTask, identity: ThreadIdentity, leader: boolean, warn: (line: string) => void): void {
  thread.setName(identity.name);
  const current = currentCredentials(thread.tid);
  if (current.noNewPrivs && !identity.noNewPrivs && leader) warn('the process runs with no_new_privs, which the restorer has and cannot drop');
  if (identity.noNewPrivs && !current.noNewPrivs) thread.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  const wanted = credentialsText(identity);
  if (credentialsText(current) === wanted && identity.securebits === 0) return;
  const problem = beyondReach(current, identity);
  if (problem !== null) {
    warn(`thread ${thread.tid}: its credentials (uid ${identity.uids[1]}, gid ${identity.gids[1]}) cannot be given back, ${problem}: it runs with the restorer's`);
    return;
  }
  const { caps } = identity;
  const last = lastCapability();
  const eachCap = (set: bigint, act: (cap: number) => void) => {
    for (let cap = 0; cap <= last; cap++) if ((set & bit(cap)) !== 0n) act(cap);
  };
  // The order the kernel's rules ask for: capabilities kept across the uid change; the
  // inheritable set while the bounding set still allows it; the bounding set while CAP_SETPCAP
  // is still effective; ambient ones before a securebit may forbid raising them; the final sets last.
  thread.prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP);
  thread.setgroups(identity.groups);
  thread.setresgid(identity.gids[0], identity.gids[1], identity.gids[2]);
  thread.setfsgid(identity.gids[3]);
  thread.setresuid(identity.uids[0], identity.uids[1], identity.uids[2]);
  thread.setfsuid(identity.uids[3]);
  thread.capset(current.caps.permitted, current.caps.permitted, caps.inheritable);
  eachCap(current.caps.bounding & ~caps.bounding, (cap) => thread.prctl(PR_CAPBSET_DROP, cap));
  eachCap(caps.ambient, (cap) => thread.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0));
  thread.prctl(PR_SET_SECUREBITS, identity.securebits);
  thread.capset(caps.effective, caps.permitted, caps.inheritable);
  const now = credentialsText(currentCredentials(thread.tid));
  if (now !== wanted) throw new Error(`thread ${thread.tid}: took credentials ${now}, not the dumped ${wanted}`);
}

/**
 * Runs make with the thread's effective uid, gid and groups switched to the dumped thread's, its
 * capabilities kept, then switches back: a socket records who made it (its owner, which an
 * SO_REUSEPORT group must share, and the credentials a Unix listener shows its clients as
 * SO_PEERCRED), and the dumped process made its sockets as itself, its capabilities letting it
 * bind where its user alone could not. Nothing is switched where the restorer cannot give the
 * credentials (setIdentity says so).
 */
export function asDumpedUser<T>(thread: RemoteTask, identity: ThreadIdentity | undefined, make: () => T): T {
  if (!identity) return make();
  const current = currentCredentials(thread.tid);
  const [uid, gid, groups] = [current.uids[1], current.gids[1], current.groups];
  if (uid === identity.uids[1] && gid === identity.gids[1] && groups.join() === identity.groups.join()) return make();
  if (beyondReach(current, identity) !== null) return make();
  const securebits = thread.prctl(PR_GET_SECUREBITS);
  thread.prctl(PR_SET_SECUREBITS, securebits | SECBIT_NO_SETUID_FIXUP);
  thread.setgroups(identity.groups);
  thread.setresgid(-1, identity.gids[1], -1);
  thread.setresuid(-1, identity.uids[1], -1);
  try {
    return make();
  } finally {
    thread.setresuid(-1, uid, -1);
    thread.setresgid(-1, gid, -1);
    thread.setgroups(groups);
    thread.prctl(PR_SET_SECUREBITS, securebits);
  }
}

/**
 * The dumped process's dumpable mode, which a change of credentials resets (to suid_dumpable): a
 * program that made itself undumpable (ssh-agent, say) stays so. Mode 2 cannot be asked for.
 */
export function setDumpable(leader: RemoteTask, mmFlags: bigint): void {
  const mode = mmFlags & MMF_DUMPABLE_MASK;
  if (mode <= 1n) leader.prctl(PR_SET_DUMPABLE, Number(mode));
}
