// Opens its own dump on an imgfs mount, reports how that went, then keeps counting so a test
// can tell it was not left frozen.
// Prints: ready <pid>, then: open <0|ERRNO-NAME>, then: tick <n> every 100 ms.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: selfdump <mountpoint>\n"); return 2; }
  char path[4096];
  snprintf(path, sizeof path, "%s/%d/dump", argv[1], getpid());
  printf("ready %d\n", getpid());
  fflush(stdout);

  int fd = open(path, O_RDONLY);
  if (fd < 0) printf("open %s\n", strerrorname_np(errno));
  else printf("open 0\n");
  fflush(stdout);
  if (fd >= 0) close(fd);

  struct timespec nap = {0, 100 * 1000 * 1000};
  for (unsigned long n = 1;; n++) {
    nanosleep(&nap, NULL);
    printf("tick %lu\n", n);
    fflush(stdout);
  }
}
