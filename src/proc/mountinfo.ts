// Which file system is mounted where, from /proc/self/mountinfo (proc(5)): the device a mount
// point's files have, in the form /proc/<pid>/maps prints it.

import { readFileSync } from 'node:fs';

/** A path as mountinfo writes it: space, tab, newline and backslash as octal escapes. */
function escapePath(path: string): string {
  return path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/**
 * The device of the file system mounted on mountPoint (the topmost, when mounts are stacked) as
 * maps prints a mapping's ("%02x:%02x" of major and minor), or undefined when nothing is mounted
 * there. mountinfo: "id parent major:minor root mount-point ...".
 */
export function mountedDevice(mountPoint: string, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string | undefined {
  const escaped = escapePath(mountPoint);
  let device: string | undefined;
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    if (fields[4] !== escaped) continue;
    const [major, minor] = (fields[2] ?? '').split(':').map(Number);
    if (Number.isInteger(major) && Number.isInteger(minor)) device = `${hex2(major)}:${hex2(minor)}`;
  }
  return device;
}

/**
 * A mount point of the file system on device major:minor, one that mounts its root where there
 * is one (a bind mount of a subdirectory shows only part of it); undefined if none is mounted.
 */
export function mountPointOf(major: number, minor: number, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string | undefined {
  const mounts = mountinfo.split('\n').map((line) => line.split(' ')).filter((fields) => fields[2] === `${major}:${minor}`);
  const chosen = mounts.find((fields) => fields[3] === '/') ?? mounts[0];
  return chosen && unescapePath(chosen[4]);
}

function unescapePath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
