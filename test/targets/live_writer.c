// Rewrites a buffer of 2048 pages without pause, page by page, each pass writing its generation
// number into every page (the whole page: one word repeated), so at any instant pages before the
// cursor hold generation g and the rest g - 1. A snapshot of one instant shows exactly that; one
// read while the writer runs shows more than two generations, or several steps.
// Arguments: "wipe": a page that MADV_WIPEONFORK marks holds 0x5a bytes and one MADV_DONTFORK
// marks 0xa5 bytes (a fork would see zeros in the first and not have the second); "dontfork-big":
// 65 MiB of MADV_DONTFORK memory, every page touched; "subreaper": the process is a child
// subreaper (PR_SET_CHILD_SUBREAPER).
// Prints: ready <buffer-hex> <pages> <generation-word-hex> <wiped-page-hex or 0> <dontfork-page-hex or 0>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#define PAGES 2048
#define PAGE 4096

static volatile uint64_t generation;

/** bytes of fresh memory that madvise marks with advice, every byte set to fill; NULL on failure. */
static unsigned char *marked(size_t bytes, int advice, int fill) {
  unsigned char *at = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (at == MAP_FAILED || madvise(at, bytes, advice) != 0) return NULL;
  memset(at, fill, bytes);
  return at;
}

int main(int argc, char **argv) {
  uint64_t *buffer = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buffer == MAP_FAILED) return 1;
  const char *mode = argc > 1 ? argv[1] : "";
  unsigned char *wiped = NULL, *unforked = NULL;
  if (strcmp(mode, "wipe") == 0) {
    wiped = marked(PAGE, MADV_WIPEONFORK, 0x5a);
    unforked = marked(PAGE, MADV_DONTFORK, 0xa5);
    if (!wiped || !unforked) return 1;
  }
  if (strcmp(mode, "dontfork-big") == 0 && !marked(65 << 20, MADV_DONTFORK, 0x11)) return 1;
  if (strcmp(mode, "subreaper") == 0 && prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return 1;
  for (size_t i = 0; i < PAGES * PAGE / 8; i++) buffer[i] = 0;
  printf("ready %lx %d %lx %lx %lx\n", (unsigned long)(uintptr_t)buffer, PAGES, (unsigned long)(uintptr_t)&generation,
         (unsigned long)(uintptr_t)wiped, (unsigned long)(uintptr_t)unforked);
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
