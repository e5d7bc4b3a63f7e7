// Writes "out <n>" to standard output and "err <n>" to standard error in turn, every 50 ms. Run
// with both on one open file (`> log 2>&1`), the file holds the two in turn: if after a restore
// each had an offset of its own, one would overwrite the other's lines.
// Prints nothing else.
#include <stdio.h>
#include <time.h>

int main(void) {
  struct timespec nap = {0, 50 * 1000 * 1000};
  for (unsigned long n = 0;; n++) {
    dprintf(1, "out %lu\n", n);
    dprintf(2, "err %lu\n", n);
    nanosleep(&nap, NULL);
  }
}
