// Ten regions of anonymous memory, each with one thing madvise(2) or mlock(2) sets on it (the
// order of VMA_FLAGS in docs/format.md; the last one locked on fault, which shows as lo and lf),
// apart so that none merges with another; then ticks.
// Prints: ready <first-region-hex> <stride> <count> <mergeable-ok>, then "tick <n>" every 50 ms.
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGES 4
#define COUNT 10
#define LOCK -1
#define LOCK_ON_FAULT -2

int main(void) {
  const size_t page = 4096, size = PAGES * page, stride = 2 * size;
  unsigned char *base = mmap(NULL, COUNT * stride, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) { perror("mmap"); return 1; }
  for (int i = 0; i < COUNT; i++) {
    munmap(base + i * stride + size, size); // the gap that keeps the regions apart
    memset(base + i * stride, 0x40 + i, size);
  }
  const int advice[COUNT] = { LOCK, MADV_DONTFORK, MADV_WIPEONFORK, MADV_DONTDUMP, MADV_HUGEPAGE, MADV_NOHUGEPAGE,
                              MADV_MERGEABLE, MADV_SEQUENTIAL, MADV_RANDOM, LOCK_ON_FAULT };
  int mergeable = 1;
  for (int i = 0; i < COUNT; i++) {
    unsigned char *region = base + i * stride;
    int rc = advice[i] == LOCK ? mlock(region, size)
           : advice[i] == LOCK_ON_FAULT ? mlock2(region, size, MLOCK_ONFAULT)
           : madvise(region, size, advice[i]);
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
