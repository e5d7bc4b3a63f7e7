// A daemon taking commands through a named FIFO (argv[1]), opened O_RDWR as such daemons do so
// that it never reads an end of file: prints "cmd <line>" for each line written into it.
// Prints: ready
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int fd = open(argv[1], O_RDWR);
  if (fd < 0) { perror("open"); return 1; }
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("ready\n");
  char line[256];
  for (;;) {
    ssize_t n = read(fd, line, sizeof line - 1);
    if (n <= 0) { printf("error %zd\n", n); sleep(1); continue; }
    line[n] = 0;
    printf("cmd %s", line);
  }
}
