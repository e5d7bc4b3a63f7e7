// The mark the kernel puts after the path of a file unlinked since it was opened or mapped (d_path
// of an unlinked dentry), in /proc/<pid>/maps and the /proc/<pid>/fd links, and so in the paths
// an image records: the path no longer leads to the file.

export const DELETED_SUFFIX = ' (deleted)';

/** Whether the file a maps name or an fd link names had been unlinked: its path cannot open it. */
export function isDeleted(path: string): boolean {
  return path.endsWith(DELETED_SUFFIX);
}
