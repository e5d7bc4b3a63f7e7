// Files no path leads to: a memfd "imgfs-lost" at fd 60 (offset 5, sealed against shrinking and
// growing), and a file <dir>/doomed opened at fd 61, dup'd to 62 (offset 7), then deleted.
// Prints: ready; on SIGUSR1: "memfd <its bytes> seals <F_GET_SEALS> at <offset>" and
// "doomed <its bytes> at <offset> <offset of 62>"
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile sig_atomic_t asked;
static void on_usr1(int sig) { (void)sig; asked = 1; }

static void fail(const char *what) {
  perror(what);
  _exit(1);
}

static void show(const char *name, int fd, char *out, size_t size) {
  ssize_t got = pread(fd, out, size - 1, 0);
  if (got < 0) fail(name);
  out[got] = 0;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  int memfd = memfd_create("imgfs-lost", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (memfd < 0 || write(memfd, "kept in memory only", 19) != 19 || dup2(memfd, 60) != 60) fail("memfd");
  close(memfd);
  if (fcntl(60, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) || lseek(60, 5, SEEK_SET) != 5) fail("seals");
  char path[4096];
  snprintf(path, sizeof path, "%s/doomed", argv[1]);
  int doomed = open(path, O_RDWR | O_CREAT | O_TRUNC, 0640);
  if (doomed < 0 || write(doomed, "written, then deleted", 21) != 21 || dup2(doomed, 61) != 61 || dup2(doomed, 62) != 62) fail("doomed");
  close(doomed);
  if (lseek(61, 7, SEEK_SET) != 7 || unlink(path)) fail("unlink");
  signal(SIGUSR1, on_usr1);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    pause();
    if (!asked) continue;
    asked = 0;
    char bytes[64];
    show("memfd", 60, bytes, sizeof bytes);
    printf("memfd %s seals %d at %ld\n", bytes, fcntl(60, F_GET_SEALS), (long)lseek(60, 0, SEEK_CUR));
    show("doomed", 61, bytes, sizeof bytes);
    printf("doomed %s at %ld %ld\n", bytes, (long)lseek(61, 0, SEEK_CUR), (long)lseek(62, 0, SEEK_CUR));
    fflush(stdout);
  }
}
