// Guard pages (MADV_GUARD_INSTALL, as newer glibc puts below thread stacks): 64 pages of private
// memory, 'g', the four from page 8 on made guard pages, which hold nothing and fault on access;
// 16 pages of shared anonymous memory, 's', pages 4 and 5 made guard pages (their object still
// holds their bytes, out of the process's reach).
// Prints: ready <address of the 64 pages, hex> <1 if the kernel made their guard pages, else 0>
//   <address of the 16 shared pages, hex> <1 if the kernel made theirs, else 0>
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
  char *s = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED || s == MAP_FAILED) { perror("mmap"); return 1; }
  memset(p, 'g', 64 * PAGE);
  memset(s, 's', 16 * PAGE);
  int guarded = madvise(p + 8 * PAGE, 4 * PAGE, MADV_GUARD_INSTALL) == 0;
  int shared_guarded = madvise(s + 4 * PAGE, 2 * PAGE, MADV_GUARD_INSTALL) == 0;
  printf("ready %lx %d %lx %d\n", (unsigned long)p, guarded, (unsigned long)s, shared_guarded);
  fflush(stdout);
  for (;;) pause();
}
