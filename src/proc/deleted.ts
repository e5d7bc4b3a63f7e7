// The mark the kernel puts after the path of a file unlinked since it was opened or mapped (d_path
// of an unlinked dentry), in /proc/<pid>/maps and the /proc/<pid>/fd links, and so in the paths
// an image records: the path no longer leads to the file.

export const DELETED_SUFFIX = ' (deleted)';

/** Whether the file a maps name or an fd link names had been unlinked: its path cannot open it. */
export function isDeleted(path: string): boolean {
  return path.endsWith(DELETED_SUFFIX);
}

/**
 * What maps shows for MAP_ANONYMOUS|MAP_HUGETLB memory: the kernel backs it with an unlinked file
 * of its internal hugetlbfs. It is anonymous memory in huge pages, not a file to carry or reopen.
 */
export const ANONYMOUS_HUGETLB_PATH = `/anon_hugepage${DELETED_SUFFIX}`;

/**
 * What maps and the fd link show for memfd_secret memory. Its pages are out of every other
 * process's reach by design (the kernel's own core dumper leaves them out too), and its
 * descriptor cannot be opened through /proc: there are no bytes to carry.
 */
export const SECRET_MEMORY_PATH = `/secretmem${DELETED_SUFFIX}`;
