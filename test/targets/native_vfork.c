// A target whose only thread sleeps uninterruptibly: it vfork()s, and a parent waits in state D
// until its vfork child exits. Prints "ready <pid>", then the child sleeps argv[1] ms and exits;
// the parent then prints "resumed" and sleeps until killed.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long ms = argc > 1 ? atol(argv[1]) : 2000;
  printf("ready %d\n", getpid());
  fflush(stdout);
  if (vfork() == 0) {
    struct timespec nap = {ms / 1000, (ms % 1000) * 1000 * 1000};
    nanosleep(&nap, NULL);
    _exit(0);
  }
  printf("resumed\n");
  fflush(stdout);
  for (;;) pause();
}
