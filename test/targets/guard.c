// Guard pages (MADV_GUARD_INSTALL, as newer glibc puts below thread stacks): 64 pages of 'g', the
// four from page 8 on made guard pages, which hold nothing and fault on access.
// Prints: ready <address of the 64 pages, hex> <1 if the kernel made the guard pages, else 0>
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#define PAGE 4096

int main(void) {
  char *p = mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 1; }
  memset(p, 'g', 64 * PAGE);
  int guarded = madvise(p + 8 * PAGE, 4 * PAGE, MADV_GUARD_INSTALL) == 0;
  printf("ready %lx %d\n", (unsigned long)p, guarded);
  fflush(stdout);
  for (;;) pause();
}
