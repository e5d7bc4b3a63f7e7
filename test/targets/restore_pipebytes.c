// A self-pipe holding bytes at the dump: fds 40 (read) and 41 (write), made 128 KiB large, filled
// with 70000 bytes of which the first 10 are read again (so its first buffer starts mid-page).
// Prints: ready
// then, on SIGUSR1: pipe <bytes> sum <sum of (i+1)*byte> capacity <F_GETPIPE_SZ> of what it reads.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include "targets.h"

#define FILL 70000

int main(void) {
  int ends[2];
  if (pipe(ends)) { perror("pipe"); return 1; }
  place(ends[0], 40);
  place(ends[1], 41);
  if (fcntl(41, F_SETPIPE_SZ, 128 * 1024) < 0) { perror("F_SETPIPE_SZ"); return 1; }
  static unsigned char bytes[FILL];
  for (int i = 0; i < FILL; i++) bytes[i] = (unsigned char)(i * 7 + i / 251);
  if (write(41, bytes, FILL) != FILL) { perror("write"); return 1; }
  if (read(40, bytes, 10) != 10) { perror("read"); return 1; }
  sigset_t usr1 = block_signal(SIGUSR1);
  printf("ready\n");
  fflush(stdout);
  int signal;
  sigwait(&usr1, &signal);
  fcntl(40, F_SETFL, O_NONBLOCK);
  unsigned long long sum = 0;
  long count = 0;
  unsigned char chunk[4096];
  for (ssize_t got; (got = read(40, chunk, sizeof chunk)) > 0;) {
    for (ssize_t i = 0; i < got; i++) sum += (unsigned long long)(count + i + 1) * chunk[i];
    count += got;
  }
  printf("pipe %ld sum %llu capacity %d\n", count, sum, fcntl(40, F_GETPIPE_SZ));
  fflush(stdout);
  return 0;
}
