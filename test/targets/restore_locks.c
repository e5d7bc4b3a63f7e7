// File locks for a restore to take again: <a> locked with flock(LOCK_EX) through fd 30, <b> with a
// POSIX write lock on bytes 100-109 through fd 31, <c> with an OFD read lock from byte 0 to EOF
// through fd 32.
// Prints: ready
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>
#include "targets.h"

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: restore_locks <a> <b> <c>\n"); return 2; }
  place(open(argv[1], O_RDWR | O_CREAT, 0600), 30);
  place(open(argv[2], O_RDWR | O_CREAT, 0600), 31);
  place(open(argv[3], O_RDWR | O_CREAT, 0600), 32);
  struct flock posix = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 10};
  struct flock ofd = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  if (flock(30, LOCK_EX) || fcntl(31, F_SETLK, &posix) || fcntl(32, F_OFD_SETLK, &ofd)) { perror("lock"); return 1; }
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
