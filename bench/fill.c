// Benchmark target: maps <MiB> of private anonymous memory, touches every page with non-zero
// bytes (so every page is present and none is the shared zero page), then waits to be dumped.
// Prints: ready <region-hex> <bytes>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: fill <MiB>\n"); return 2; }
  size_t bytes = strtoul(argv[1], NULL, 0) << 20;
  unsigned char *region = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) { perror("fill: mmap"); return 1; }
  memset(region, 0x5a, bytes);
  // The page number in each page's first word keeps the pages distinct, as real memory is.
  for (size_t page = 0; page < bytes / PAGE; page++) *(uint64_t *)(region + page * PAGE) = page + 1;
  printf("ready %lx %zu\n", (unsigned long)(uintptr_t)region, bytes);
  fflush(stdout);
  for (;;) pause();
}
