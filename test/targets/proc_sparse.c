// Reserves <bytes> of anonymous memory without backing and writes one byte to each page index
// given on the command line, then waits. Huge pages are off for the reservation so a touch
// makes exactly one page present. Also maps a one-page file whose name has a space and
// unlinks it, so maps shows a " (deleted)" name, and renames itself to a comm with ") (" in it.
// Usage: proc_sparse <bytes> <page-index>...
// Prints: ready <base-hex> <bytes> <deleted-file-path>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#define PAGE 4096UL

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: proc_sparse <bytes> <page-index>...\n"); return 2; }
  size_t bytes = strtoull(argv[1], NULL, 0);
  unsigned char *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) { perror("mmap reservation"); return 1; }
  if (madvise(base, bytes, MADV_NOHUGEPAGE) != 0) { perror("madvise"); return 1; }
  for (int i = 2; i < argc; i++) base[strtoull(argv[i], NULL, 0) * PAGE] = 1;

  char path[64];
  snprintf(path, sizeof path, "/tmp/proc sparse %d", (int)getpid());
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, PAGE) != 0) { perror(path); return 1; }
  if (mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED) { perror("mmap file"); return 1; }
  close(fd);
  unlink(path);

  prctl(PR_SET_NAME, "sp) (x y)");
  printf("ready %lx %zu %s\n", (unsigned long)(uintptr_t)base, bytes, path);
  fflush(stdout);
  for (;;) pause();
}
