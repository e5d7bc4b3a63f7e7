// Maps <private-file> MAP_PRIVATE from file page 2 on and writes to two of its pages, and maps
// <shared-file> MAP_SHARED and writes to it, then waits. Both files are created with FILE_PAGES
// pages, file page p filled with the byte ('A' + p) (private file) or ('a' + p) (shared file).
// The private mapping's pages 1 and 3 start with "modified page <n>".
// Prints: ready <private-map-hex> <shared-map-hex> <mapped-pages>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define FILE_PAGES 10
#define MAP_OFFSET_PAGES 2
#define MAPPED_PAGES (FILE_PAGES - MAP_OFFSET_PAGES)

static int create_file(const char *path, char first) {
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) { perror(path); return -1; }
  char page[PAGE];
  for (int p = 0; p < FILE_PAGES; p++) {
    memset(page, first + p, PAGE);
    if (write(fd, page, PAGE) != PAGE) { perror("write"); return -1; }
  }
  return fd;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: filemap <private-file> <shared-file>\n"); return 2; }
  int private_fd = create_file(argv[1], 'A');
  int shared_fd = create_file(argv[2], 'a');
  if (private_fd < 0 || shared_fd < 0) return 1;

  volatile unsigned char *priv = mmap(NULL, MAPPED_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE,
                                      private_fd, MAP_OFFSET_PAGES * PAGE);
  volatile unsigned char *shared = mmap(NULL, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
                                        shared_fd, 0);
  if (priv == MAP_FAILED || shared == MAP_FAILED) { perror("mmap"); return 1; }

  unsigned sum = 0;
  for (int p = 0; p < MAPPED_PAGES; p++) sum += priv[p * PAGE];
  for (int p = 0; p < FILE_PAGES; p++) sum += shared[p * PAGE];
  snprintf((char *)priv + 1 * PAGE, 64, "modified page %d", 1);
  snprintf((char *)priv + 3 * PAGE, 64, "modified page %d", 3);
  snprintf((char *)shared, 64, "shared write");

  printf("ready %lx %lx %d %u\n", (unsigned long)(uintptr_t)priv, (unsigned long)(uintptr_t)shared,
         MAPPED_PAGES, sum);
  fflush(stdout);
  for (;;) pause();
}
