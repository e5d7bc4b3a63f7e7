// Fills <MiB> (default 16) of anonymous memory so that every 8-byte word holds its own address
// XOR PATTERN_KEY, moves its break to an address no page boundary rounds to, then waits.
// Prints: ready <region-hex> <bytes> <brk-hex>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define PATTERN_KEY 0x5a17c0de2b4d9e61ULL

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 16;
  size_t bytes = mib << 20;
  uint64_t *region = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) { perror("mmap"); return 1; }
  for (size_t i = 0; i < bytes / sizeof(uint64_t); i++)
    region[i] = (uint64_t)(uintptr_t)&region[i] ^ PATTERN_KEY;
  // Sets up malloc's heap now, so that printf below does not move the break (volatile: gcc
  // would elide a plain malloc/free pair).
  void *volatile heap_setup = malloc(1);
  free(heap_setup);
  char *brk_now = (char *)sbrk(123) + 123;
  printf("ready %lx %zu %lx\n", (unsigned long)(uintptr_t)region, bytes, (unsigned long)(uintptr_t)brk_now);
  fflush(stdout);
  for (;;) pause();
}
