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
  return passwdPrimaryGroups()?.get(uid);
}

let passwdCache: { key: string; groups: Map<number, number> } | undefined;

/**
 * uid → primary gid from /etc/passwd, parsed again only when the file changes: every stat of a
 * process's file asks, and shells and `ls -l` stat often. undefined when it cannot be read.
 */
function passwdPrimaryGroups(): Map<number, number> | undefined {
  try {
    const file = statSync(PASSWD, { bigint: true });
    const key = `${file.ino}:${file.size}:${file.mtimeNs}:${file.ctimeNs}`;
    if (passwdCache?.key !== key) passwdCache = { key, groups: parsePasswdGroups(readFileSync(PASSWD, 'utf8')) };
    return passwdCache.groups;
  } catch {
    passwdCache = undefined;
    return undefined;
  }
}

const PASSWD = '/etc/passwd';

/** The first entry of each uid wins, as getpwuid's lookup does. */
export function parsePasswdGroups(passwd: string): Map<number, number> {
  const groups = new Map<number, number>();
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 4 || fields[2] === '' || fields[3] === '') continue;
    const uid = Number(fields[2]);
    const gid = Number(fields[3]);
    if (Number.isInteger(uid) && Number.isInteger(gid) && !groups.has(uid)) groups.set(uid, gid);
  }
  return groups;
}
