// The floor under any restore: a fresh process's memory has to be faulted in. Maps <bytes> of
// private anonymous memory and writes every page once, as a restore fills the restored task's
// pages. Times itself (process start-up excluded). Prints: <bytes> <nanoseconds>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: faultin <bytes>\n"); return 2; }
  size_t bytes = strtoull(argv[1], NULL, 0);
  uint64_t start = now_ns();
  unsigned char *region = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) { perror("faultin: mmap"); return 1; }
  memset(region, 0x5a, bytes);
  printf("%zu %llu\n", bytes, (unsigned long long)(now_ns() - start));
  return 0;
}
