// Four pages of memfd_secret memory, mapped shared and filled with 'S': memory no other process
// can read, by design, its descriptor kept open.
// Prints: ready <address-hex> <fd>, or ready 0 where the kernel has no secret memory.
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SIZE (4 * 4096)

int main(void) {
  int fd = syscall(447 /* memfd_secret */, 0);
  if (fd < 0 || ftruncate(fd, SIZE) != 0) {
    printf("ready 0\n");
  } else {
    char *secret = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (secret == MAP_FAILED) return 1;
    memset(secret, 'S', SIZE);
    printf("ready %lx %d\n", (unsigned long)secret, fd);
  }
  fflush(stdout);
  for (;;) pause();
}
