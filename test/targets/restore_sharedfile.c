// Maps <file> (created here: two pages of 's') shared and writable, as a program keeping its data
// in a mapped file does, and writes "mapped" at its start through the mapping. Every 50 ms it
// prints what the mapping shows there.
// Prints: ready <map-address-hex>
// then:   shows <the first 8 bytes of the mapping>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SIZE 8192

int main(int argc, char **argv) {
  char bytes[SIZE];
  memset(bytes, 's', sizeof bytes);
  int fd = argc > 1 ? open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600) : -1;
  if (fd < 0 || write(fd, bytes, sizeof bytes) != (ssize_t)sizeof bytes) { perror("file"); return 1; }
  char *map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) { perror("mmap"); return 1; }
  close(fd);
  memcpy(map, "mapped__", 8);
  printf("ready %lx\n", (unsigned long)map);
  fflush(stdout);
  struct timespec nap = {0, 50 * 1000 * 1000};
  for (;;) {
    printf("shows %.8s\n", map);
    fflush(stdout);
    nanosleep(&nap, NULL);
  }
}
