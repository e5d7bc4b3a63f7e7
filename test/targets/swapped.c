// Fills a private anonymous region with a known pattern and pushes it out to swap with
// MADV_PAGEOUT; SIGUSR1 pushes it out again (reading a dump swaps the pages back in).
// Page i holds the byte (i * 7 + 3) & 0xff, its first word i | 0x5357415000000000.
// Prints: ready <base-hex> <pages> <swapped>, and after each SIGUSR1: swapped <n>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#define PAGES 256
#define PAGE 4096
#define SWAPPED_BIT (1ULL << 62)

static volatile sig_atomic_t again;
static void on_usr1(int sig) { (void)sig; again = 1; }

/** Pages out until pagemap shows every page swapped, or a few tries have passed. */
static int page_out(unsigned char *base) {
  int fd = open("/proc/self/pagemap", O_RDONLY);
  uint64_t entries[PAGES];
  int swapped = 0;
  for (int attempt = 0; attempt < 20 && swapped < PAGES; attempt++) {
    madvise(base, PAGES * PAGE, MADV_PAGEOUT);
    pread(fd, entries, sizeof entries, (off_t)((uintptr_t)base / PAGE * 8));
    swapped = 0;
    for (int i = 0; i < PAGES; i++) swapped += (entries[i] & SWAPPED_BIT) != 0;
    if (swapped < PAGES) usleep(10000);
  }
  close(fd);
  return swapped;
}

int main(void) {
  unsigned char *base = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) { perror("mmap"); return 1; }
  for (int i = 0; i < PAGES; i++) {
    memset(base + i * PAGE, (i * 7 + 3) & 0xff, PAGE);
    *(uint64_t *)(base + i * PAGE) = (uint64_t)i | 0x5357415000000000ULL;
  }
  signal(SIGUSR1, on_usr1);
  printf("ready %lx %d %d\n", (unsigned long)(uintptr_t)base, PAGES, page_out(base));
  fflush(stdout);
  for (;;) {
    pause();
    if (again) {
      again = 0;
      printf("swapped %d\n", page_out(base));
      fflush(stdout);
    }
  }
}
