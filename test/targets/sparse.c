// Reserves 64 GiB without backing and touches one page at each of a few known offsets, then
// waits. Each touched page is filled with the byte (index + 1).
// Prints: ready <base-hex> <reserved-bytes> <offset-hex>,<offset-hex>,...
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GIB (1ULL << 30)
#define RESERVED (64 * GIB)

static const uint64_t touched[] = {0, 4096 * 3, GIB + 4096 * 17, 17 * GIB, 40 * GIB + 4096 * 5, RESERVED - 4096};

int main(void) {
  unsigned char *base = mmap(NULL, RESERVED, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) { perror("mmap"); return 1; }
  printf("ready %lx %llu ", (unsigned long)(uintptr_t)base, (unsigned long long)RESERVED);
  for (size_t i = 0; i < sizeof touched / sizeof touched[0]; i++) {
    memset(base + touched[i], (int)(i + 1), 4096);
    printf("%s%llx", i ? "," : "", (unsigned long long)touched[i]);
  }
  printf("\n");
  fflush(stdout);
  for (;;) pause();
}
