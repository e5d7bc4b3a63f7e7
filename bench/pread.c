// Random-access latency: opens <file>, then does <count> 4 KiB preads at pseudo-random offsets
// (fixed seed, so every run reads the same offsets) and prints each pread's latency in
// nanoseconds, one per line. The open itself is not timed.
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE 4096

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

// xorshift64: a fixed, portable sequence; rand() would make runs depend on the libc.
static uint64_t next_random(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *state = x;
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: pread <file> <count>\n"); return 2; }
  long count = atol(argv[2]);
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) { perror("pread: open"); return 1; }
  struct stat st;
  if (fstat(fd, &st) != 0) { perror("pread: fstat"); return 1; }
  if (st.st_size <= READ_SIZE) { fprintf(stderr, "pread: %s is too small (%ld bytes)\n", argv[1], (long)st.st_size); return 1; }

  static char buf[READ_SIZE];
  uint64_t *latencies = malloc(count * sizeof *latencies);
  uint64_t seed = 0x9e3779b97f4a7c15u;
  for (long i = 0; i < count; i++) {
    off_t offset = next_random(&seed) % (uint64_t)(st.st_size - READ_SIZE);
    uint64_t start = now_ns();
    ssize_t got = pread(fd, buf, READ_SIZE, offset);
    latencies[i] = now_ns() - start;
    if (got != READ_SIZE) {
      fprintf(stderr, "pread: read of %d bytes at offset %ld returned %zd\n", READ_SIZE, (long)offset, got);
      if (got < 0) perror("pread");
      return 1;
    }
  }
  for (long i = 0; i < count; i++) printf("%lu\n", (unsigned long)latencies[i]);
  return 0;
}
