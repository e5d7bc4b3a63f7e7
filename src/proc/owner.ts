// Who owns a process's files in the mount. default_permissions checks mode 0400 against the owner,
// so the owner must be one who could read the process's memory anyway.

import { readFileSync, statSync } from 'node:fs';
import { statusField, statusMask } from './status.js';

export interface FileOwner {
  uid: number;
  gid: number;
  mtime: Date;
}

/**
 * The owner of the process's /proc files (root's for a non-dumpable task), but root also when a
 * user who is not root could not ptrace it (ptrace_may_access), nor read its /proc/<pid>/mem: its
 * real, effective and saved user or group ids differ, or it holds capabilities. Mode bits cannot
 * ask for a user and a group at once, so a process whose group is not its user's own (in
 * /etc/passwd) is root's too: its user, in their own group, could not ptrace it either.
 */
export function processFileOwner(pid: number): FileOwner {
  const { uid, gid, mtime } = statSync(`/proc/${pid}/stat`);
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  // Real, effective, saved (and the filesystem one, which ptrace does not look at).
  const allAre = (field: string, id: number) => {
    const [real, effective, saved] = statusField(status, field)?.split(/\s+/).map(Number) ?? [];
    return real === id && effective === id && saved === id;
  };
  const primary = primaryGroup(uid);
  const ptraceableByUser = allAre('Uid', uid) && allAre('Gid', gid) && statusMask(status, 'CapPrm') === 0n
    && (primary === undefined || primary === gid);
  return ptraceableByUser ? { uid, gid, mtime } : { uid: 0, gid: 0, mtime };
}

/** The group /etc/passwd gives the user; undefined for a user it does not list (a container's). */
function primaryGroup(uid: number): number | undefined {
  let passwd: string;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  const entry = passwd.split('\n').map((line) => line.split(':')).find((fields) => fields.length >= 4 && Number(fields[2]) === uid && fields[2] !== '');
  return entry ? Number(entry[3]) : undefined;
}
