// Maps <bytes> of anonymous memory with huge pages off and writes one byte to every
// <stride>-th page (stride 1 touches all of it), then waits.
// Usage: proc_stride <bytes> <stride>
// Prints: ready <base-hex> <bytes>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: proc_stride <bytes> <stride>\n"); return 2; }
  size_t bytes = strtoull(argv[1], NULL, 0);
  size_t stride = strtoull(argv[2], NULL, 0);
  unsigned char *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) { perror("mmap"); return 1; }
  if (madvise(base, bytes, MADV_NOHUGEPAGE) != 0) { perror("madvise"); return 1; }
  for (size_t page = 0; page < bytes / PAGE; page += stride) base[page * PAGE] = 1;
  printf("ready %lx %zu\n", (unsigned long)(uintptr_t)base, bytes);
  fflush(stdout);
  for (;;) pause();
}
