// An event loop for a restore to keep running: a self-pipe (fds 40/41, written by the SIGUSR2
// handler), an eventfd at 42 holding 5, a timerfd at 43 (every 200 ms), a signalfd at 44 for
// SIGUSR1 (blocked), all but the write end watched by an epoll instance at 45 (data: 1000 + fd;
// the eventfd edge-triggered). The loop reads the eventfd only on SIGUSR2, so its count survives
// the dump.
// Prints: ready
// then: tick <n> per timerfd expiry; signal <signo> per SIGUSR1 read from the signalfd;
// eventfd ready when the eventfd's edge is reported (once registered, and after each write);
// pipe <byte> eventfd <count> per SIGUSR2 (the eventfd is read, then written 1 again).
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include "targets.h"

static void on_usr2(int signal) {
  (void)signal;
  char byte = 'x';
  if (write(41, &byte, 1) != 1) _exit(3);
}

int main(void) {
  int ends[2];
  if (pipe(ends)) { perror("pipe"); return 1; }
  place(ends[0], 40);
  place(ends[1], 41);
  place(eventfd(5, EFD_NONBLOCK | EFD_CLOEXEC), 42);
  place(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), 43);
  struct itimerspec every = {{0, 200000000}, {0, 200000000}};
  if (timerfd_settime(43, 0, &every, NULL)) { perror("timerfd_settime"); return 1; }
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, NULL);
  place(signalfd(-1, &usr1, SFD_CLOEXEC), 44);
  place(epoll_create1(EPOLL_CLOEXEC), 45);
  for (int fd = 40; fd <= 44; fd++) {
    if (fd == 41) continue;
    // The eventfd edge-triggered: it reports its count once per registration or write, not forever.
    struct epoll_event event = {.events = EPOLLIN | (fd == 42 ? EPOLLET : 0), .data.u64 = 1000 + fd};
    if (epoll_ctl(45, EPOLL_CTL_ADD, fd, &event)) { perror("epoll_ctl"); return 1; }
  }
  struct sigaction action = {.sa_handler = on_usr2, .sa_flags = SA_RESTART};
  sigaction(SIGUSR2, &action, NULL);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    struct epoll_event events[8];
    int n = epoll_wait(45, events, 8, -1);
    for (int i = 0; i < n; i++) {
      uint64_t value;
      switch (events[i].data.u64) {
      case 1040: {
        char byte;
        if (read(40, &byte, 1) != 1) return 4;
        if (read(42, &value, 8) != 8) value = 0;
        printf("pipe %c eventfd %llu\n", byte, (unsigned long long)value);
        value = 1;
        if (write(42, &value, 8) != 8) return 5;
        break;
      }
      case 1042:
        printf("eventfd ready\n");
        break;
      case 1043:
        if (read(43, &value, 8) == 8) printf("tick %llu\n", (unsigned long long)value);
        break;
      case 1044: {
        struct signalfd_siginfo info;
        if (read(44, &info, sizeof info) == sizeof info) printf("signal %u\n", info.ssi_signo);
        break;
      }
      default:
        printf("unknown %llu\n", (unsigned long long)events[i].data.u64);
      }
      fflush(stdout);
    }
  }
}
