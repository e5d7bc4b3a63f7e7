// Memory in huge pages (MAP_HUGETLB): 4 MiB private of 'h', 2 MiB shared of 's'.
// Prints: ready <private address, hex> <shared address, hex>, or "ready 0 0" when the machine has
// no huge pages to give.
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIB (1024 * 1024)

int main(void) {
  char *private = mmap(NULL, 4 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
  char *shared = mmap(NULL, 2 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
  if (private == MAP_FAILED || shared == MAP_FAILED) {
    printf("ready 0 0\n");
  } else {
    memset(private, 'h', 4 * MIB);
    memset(shared, 's', 2 * MIB);
    printf("ready %lx %lx\n", (unsigned long)private, (unsigned long)shared);
  }
  fflush(stdout);
  for (;;) pause();
}
