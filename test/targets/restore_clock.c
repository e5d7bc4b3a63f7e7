// Prints its clocks every 100 ms: "clock <monotonic ns> <boottime ns> <monotonic ns by syscall>",
// the first two through the vDSO as programs read them, the last from the kernel itself.
// Prints: ready, then the clock lines.
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

int main(void) {
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    struct timespec mono, boot, raw, tick = {0, 100 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_BOOTTIME, &boot);
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &raw);
    printf("clock %lld %lld %lld\n", ns(mono), ns(boot), ns(raw));
    fflush(stdout);
    nanosleep(&tick, NULL);
  }
}
