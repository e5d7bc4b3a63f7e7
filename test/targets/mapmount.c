// Maps <file> MAP_PRIVATE, read-only, from offset 0, without touching it (no page of it is
// present), then waits: a process holding a mapping of a file of the imgfs mount itself.
// Prints: ready <map-hex> <bytes>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: mapmount <file>\n"); return 2; }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) { perror(argv[1]); return 1; }
  struct stat st;
  if (fstat(fd, &st) < 0) { perror("fstat"); return 1; }
  void *map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) { perror("mmap"); return 1; }
  close(fd);
  printf("ready %lx %ld\n", (unsigned long) map, (long) st.st_size);
  fflush(stdout);
  for (;;) pause();
}
