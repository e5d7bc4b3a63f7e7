// Rewrites a buffer of 2048 pages without pause, page by page, each pass writing its generation
// number into every page (the whole page: one word repeated), so at any instant pages before the
// cursor hold generation g and the rest g - 1. A snapshot of one instant shows exactly that; one
// read while the writer runs shows more than two generations, or several steps.
// With the argument "wipe", a page that MADV_WIPEONFORK marks holds 0x5a bytes as well (a fork
// would see zeros there); with "subreaper", the process is a child subreaper (PR_SET_CHILD_SUBREAPER).
// Prints: ready <buffer-hex> <pages> <generation-word-hex> <wiped-page-hex or 0>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#define PAGES 2048
#define PAGE 4096

static volatile uint64_t generation;

int main(int argc, char **argv) {
  uint64_t *buffer = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buffer == MAP_FAILED) return 1;
  unsigned char *wiped = NULL;
  if (argc > 1 && strcmp(argv[1], "wipe") == 0) {
    wiped = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (wiped == MAP_FAILED || madvise(wiped, PAGE, MADV_WIPEONFORK) != 0) return 1;
    memset(wiped, 0x5a, PAGE);
  }
  if (argc > 1 && strcmp(argv[1], "subreaper") == 0 && prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return 1;
  for (size_t i = 0; i < PAGES * PAGE / 8; i++) buffer[i] = 0;
  printf("ready %lx %d %lx %lx\n", (unsigned long)(uintptr_t)buffer, PAGES, (unsigned long)(uintptr_t)&generation,
         (unsigned long)(uintptr_t)wiped);
  fflush(stdout);
  for (;;) {
    uint64_t g = generation + 1;
    for (size_t p = 0; p < PAGES; p++) {
      uint64_t *page = buffer + p * (PAGE / 8);
      for (size_t w = 0; w < PAGE / 8; w++) page[w] = g;
    }
    generation = g;
  }
}
