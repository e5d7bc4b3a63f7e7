// Opens a file and reads it to the end, reporting each step's outcome by errno name, so that a
// test can see the exact errno another user (setpriv) gets.
// Prints: open <0|ERRNO-NAME>, then if opened: read <bytes-total|ERRNO-NAME>
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: probe <file>\n"); return 2; }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) { printf("open %s\n", strerrorname_np(errno)); return 0; }
  printf("open 0\n");
  static char buf[1 << 17];
  unsigned long long total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) { printf("read %s\n", strerrorname_np(errno)); break; }
    if (n == 0) { printf("read %llu\n", total); break; }
    total += (unsigned long long)n;
  }
  close(fd);
  return 0;
}
