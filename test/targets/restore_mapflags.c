// Mappings whose kind is more than their protection: a private mapping of /dev/zero with two of
// its four pages written ('z'); a 64 GiB MAP_NORESERVE reservation never touched (more than the
// machine's memory); four sealed pages ('s', mseal, 0 where the kernel has no mseal); four
// MAP_GROWSDOWN pages ('g') that are not the stack.
// Prints: ready <devzero-hex> <reservation-hex> <sealed-hex or 0> <growsdown-hex>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGES4 (4 * 4096)

int main(void) {
  int zero = open("/dev/zero", O_RDWR);
  char *devzero = mmap(NULL, PAGES4, PROT_READ | PROT_WRITE, MAP_PRIVATE, zero, 0);
  char *reservation = mmap(NULL, 64UL << 30, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  char *sealed = mmap(NULL, PAGES4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *growsdown = mmap(NULL, PAGES4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
  if (devzero == MAP_FAILED || reservation == MAP_FAILED || sealed == MAP_FAILED || growsdown == MAP_FAILED) return 1;
  close(zero);
  memset(devzero, 'z', 2 * 4096);
  memset(sealed, 's', PAGES4);
  memset(growsdown, 'g', PAGES4);
  if (syscall(462 /* mseal */, sealed, PAGES4, 0) != 0) sealed = NULL;
  printf("ready %lx %lx %lx %lx\n", (unsigned long)devzero, (unsigned long)reservation, (unsigned long)sealed, (unsigned long)growsdown);
  fflush(stdout);
  for (;;) pause();
}
