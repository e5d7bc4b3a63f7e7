// A file opened with O_TMPFILE and O_NOFOLLOW (as Python's tempfile.TemporaryFile opens them):
// unnamed from the start, 13 bytes written. Every 50 ms it prints its offset and its bytes.
// Prints: ready
// then:   at <offset> <bytes>
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int fd = argc > 1 ? open(argv[1], O_TMPFILE | O_RDWR | O_NOFOLLOW, 0600) : -1;
  if (fd < 0 || write(fd, "unnamed-bytes", 13) != 13) { perror("O_TMPFILE"); return 1; }
  printf("ready\n");
  fflush(stdout);
  struct timespec nap = {0, 50 * 1000 * 1000};
  for (;;) {
    char bytes[32] = {0};
    ssize_t got = pread(fd, bytes, sizeof bytes - 1, 0);
    printf("at %ld %s\n", (long)lseek(fd, 0, SEEK_CUR), got > 0 ? bytes : "-");
    fflush(stdout);
    nanosleep(&nap, NULL);
  }
}
