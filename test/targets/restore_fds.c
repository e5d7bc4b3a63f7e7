// Open files and a working directory for a restore to bring back: <file> opened read-write at
// fd 30 with 5 bytes written ("hello", so its offset is 5), a pipe at fds 31 and 32, a socket
// pair at 33 and 34, a packet socket (a family a restore does not make again) at 35, <file> again
// for appending (O_APPEND, a log's way) at 36, the working directory <dir>. On each SIGUSR1 (a
// handler a restore must bring back) it writes "more\n" through fd 30 and prints what it sees.
// Prints: ready
// then, per SIGUSR1: fds <fd-30-offset> <cwd> <fd-31-target> <fd-33-target> <fd-35-target>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t pokes;

static void on_usr1(int signal) {
  (void)signal;
  pokes++;
}

static const char *target_of(int fd, char *buf, size_t size) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, buf, size - 1);
  buf[n < 0 ? 0 : n] = 0;
  return n < 0 ? "closed" : buf;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: restore_fds <file> <dir>\n"); return 2; }
  int file = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
  int pipes[2], sockets[2];
  if (file < 0 || pipe(pipes) || socketpair(AF_UNIX, SOCK_STREAM, 0, sockets) || chdir(argv[2])) { perror("restore_fds"); return 1; }
  if (write(file, "hello", 5) != 5) return 1;
  int alone = socket(AF_PACKET, SOCK_DGRAM, 0);
  int log = open(argv[1], O_WRONLY | O_APPEND);
  int low[] = {file, pipes[0], pipes[1], sockets[0], sockets[1], alone, log};
  for (int i = 0; i < 7; i++) {
    dup2(low[i], 30 + i);
    close(low[i]);
  }
  signal(SIGUSR1, on_usr1);
  printf("ready\n");
  fflush(stdout);
  for (int seen = 0;;) {
    while (pokes == seen) pause();
    seen = pokes;
    if (write(30, "more\n", 5) != 5) perror("write fd 30");
    char cwd[4096], t31[256], t33[256], t35[256];
    printf("fds %ld %s %s %s %s\n", (long)lseek(30, 0, SEEK_CUR), getcwd(cwd, sizeof cwd), target_of(31, t31, sizeof t31),
           target_of(33, t33, sizeof t33), target_of(35, t35, sizeof t35));
    fflush(stdout);
  }
}
