// Counts up every 100 ms and prints each value, so a test can tell whether it runs.
// Prints: ready <counter-address-hex>, then: tick <n>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static volatile unsigned long counter;

int main(void) {
  printf("ready %lx\n", (unsigned long)(uintptr_t)&counter);
  fflush(stdout);
  struct timespec nap = {0, 100 * 1000 * 1000};
  for (;;) {
    nanosleep(&nap, NULL);
    counter++;
    printf("tick %lu\n", counter);
    fflush(stdout);
  }
}
