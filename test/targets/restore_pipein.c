// A reader of a pipe another process writes: fd 40 is the read end of a pipe whose write end is
// the standard output of a child (sleep 1000), watched by the epoll instance at 50 (EPOLLIN, data
// 40); fd 41 is a dup of it.
// Prints: ready <child pid>
// On SIGUSR1: epoll <count> <fd of the event> <events, hex> (epoll_wait, 2 s at most), then
// read <result> <errno> (non-blocking), then done.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <unistd.h>

static volatile sig_atomic_t asked;

static void on_usr1(int signal) {
  (void)signal;
  asked = 1;
}

int main(void) {
  int ends[2];
  if (pipe(ends)) { perror("pipe"); return 1; }
  pid_t child = fork();
  if (child < 0) { perror("fork"); return 1; }
  if (child == 0) {
    dup2(ends[1], 1);
    close(ends[0]);
    close(ends[1]);
    execlp("sleep", "sleep", "1000", (char *) NULL);
    _exit(127);
  }
  close(ends[1]);
  if (dup2(ends[0], 40) != 40 || dup2(40, 41) != 41) { perror("dup2"); return 1; }
  close(ends[0]);
  fcntl(40, F_SETFL, O_NONBLOCK);
  if (dup2(epoll_create1(0), 50) != 50) { perror("epoll"); return 1; }
  struct epoll_event watch = {.events = EPOLLIN, .data.u64 = 40};
  if (epoll_ctl(50, EPOLL_CTL_ADD, 40, &watch)) { perror("epoll_ctl"); return 1; }
  signal(SIGUSR1, on_usr1);
  printf("ready %d\n", child);
  fflush(stdout);
  for (;;) {
    pause();
    if (!asked) continue;
    asked = 0;
    struct epoll_event event = {0};
    int count = epoll_wait(50, &event, 1, 2000);
    printf("epoll %d %d %x\n", count, count == 1 ? (int) event.data.u64 : -1, count == 1 ? event.events : 0);
    char byte;
    ssize_t got = read(40, &byte, 1);
    printf("read %zd %d\ndone\n", got, got < 0 ? errno : 0);
    fflush(stdout);
  }
}
