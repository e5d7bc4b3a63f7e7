// A process whose memory layout changes all the time, as a busy allocator's does: it maps a new
// page every 200 µs (unmapping the oldest once it holds 20,000), from level3(), called through
// level2() and level1() from main: what a debugger must find in its backtrace.
// Prints: ready
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

#define RING 20000

static char *ring[RING];
unsigned long mapped;

__attribute__((noinline)) static void level3(void) {
  for (;;) {
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) { perror("mmap"); return; }
    *page = 1;
    char **slot = &ring[mapped++ % RING];
    if (*slot) munmap(*slot, 4096);
    *slot = page;
    struct timespec nap = {0, 200 * 1000};
    nanosleep(&nap, NULL);
  }
}

__attribute__((noinline)) static void level2(void) { level3(); }
__attribute__((noinline)) static void level1(void) { level2(); }

int main(void) {
  printf("ready\n");
  fflush(stdout);
  level1();
  return 1;
}
