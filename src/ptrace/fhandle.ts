// Paths from file handles (open_by_handle_at, which needs CAP_DAC_READ_SEARCH): the kernel names
// the inode an inotify watch is on by its file system's handle, not by a path.

import { closeSync, constants, openSync, readlinkSync } from 'node:fs';
import { mountPointOf } from '../proc/mountinfo.js';
import { check, rawSyscall } from './libc.js';
import { O_PATH, SYS } from './syscalls.js';


/**
 * The path, in our mount namespace, of the inode a file handle names on the file system of the
 * kernel device number sdev (major << 20 | minor, as fdinfo shows it); null when it cannot be
 * found: no such mount, no such inode any more, or no CAP_DAC_READ_SEARCH.
 */
export function pathOfHandle(sdev: number, type: number, handle: Buffer): string | null {
  const mountPoint = mountPointOf(sdev >>> 20, sdev & 0xfffff);
  if (mountPoint === undefined) return null;
  let mountFd = -1;
  let fd = -1;
  try {
    // Not O_PATH: the kernel takes only a descriptor opened for real as mount_fd.
    mountFd = openSync(mountPoint, constants.O_RDONLY | constants.O_DIRECTORY);
    // struct file_handle: u32 handle_bytes, s32 handle_type, the bytes.
    const fileHandle = Buffer.alloc(8 + handle.length);
    fileHandle.writeUInt32LE(handle.length, 0);
    fileHandle.writeInt32LE(type, 4);
    handle.copy(fileHandle, 8);
    fd = check(Number(rawSyscall(SYS.open_by_handle_at, 'int', mountFd, 'void *', fileHandle, 'int', O_PATH)), () => 'open_by_handle_at');
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  } finally {
    if (fd >= 0) closeSync(fd);
    if (mountFd >= 0) closeSync(mountFd);
  }
}
