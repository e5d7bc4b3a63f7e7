// Nine regions of anonymous memory, each with one thing madvise(2) or mlock(2) sets on it (the
// order of VMA_FLAGS in docs/format.md), apart so that none merges with another; then ticks.
// Prints: ready <first-region-hex> <stride> <count> <mergeable-ok>, then "tick <n>" every 50 ms.
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGES 4
#define COUNT 9

int main(void) {
  const size_t page = 4096, size = PAGES * page, stride = 2 * size;
  unsigned char *base = mmap(NULL, COUNT * stride, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) { perror("mmap"); return 1; }
  for (int i = 0; i < COUNT; i++) {
    munmap(base + i * stride + size, size); // the gap that keeps the regions apart
    memset(base + i * stride, 0x40 + i, size);
  }
  const int advice[COUNT] = { -1, MADV_DONTFORK, MADV_WIPEONFORK, MADV_DONTDUMP, MADV_HUGEPAGE, MADV_NOHUGEPAGE,
                              MADV_MERGEABLE, MADV_SEQUENTIAL, MADV_RANDOM };
  int mergeable = 1;
  for (int i = 0; i < COUNT; i++) {
    int rc = advice[i] < 0 ? mlock(base + i * stride, size) : madvise(base + i * stride, size, advice[i]);
    if (rc != 0 && advice[i] == MADV_MERGEABLE) mergeable = 0;
    else if (rc != 0) { perror("madvise/mlock"); return 1; }
  }
  printf("ready %lx %zu %d %d\n", (unsigned long)base, stride, COUNT, mergeable);
  fflush(stdout);
  for (unsigned long n = 1;; n++) {
    printf("tick %lu\n", n);
    fflush(stdout);
    usleep(50000);
  }
}
