// A private file mapping the program wrote, then made PROT_NONE (as a sandbox or a JIT fences
// off memory it keeps): its written page is in the dump, and nothing may read it but a tracer.
// Works in <dir>: maps data.bin (two pages of 'f'), writes "private write" at its start.
// Prints: ready <address of the mapping, hex>
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2 || chdir(argv[1]) != 0) { fprintf(stderr, "usage: restore_protnone <dir>\n"); return 2; }
  char bytes[8192];
  memset(bytes, 'f', sizeof bytes);
  int fd = open("data.bin", O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, bytes, sizeof bytes) != (ssize_t)sizeof bytes) { perror("data.bin"); return 1; }
  char *p = mmap(NULL, sizeof bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 1; }
  strcpy(p, "private write");
  if (mprotect(p, sizeof bytes, PROT_NONE) != 0) { perror("mprotect"); return 1; }
  printf("ready %lx\n", (unsigned long)p);
  fflush(stdout);
  for (;;) pause();
}
