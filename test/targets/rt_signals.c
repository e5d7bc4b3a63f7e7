// Real-time signals, which the kernel delivers in the order they were queued.
//   rt_signals receive         counts SIGRTMIN's and checks each carries the value after the last;
//                              prints "ready", and on SIGRTMIN+1 "got <count> disorder <count>"
//   rt_signals send <pid> <n>  queues SIGRTMIN to pid with values 0..n-1 (waiting while its queue
//                              is full), then SIGRTMIN+1, which the kernel delivers after every
//                              SIGRTMIN queued before it; prints "ready" and "sent <n>"
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile long count, disorder, last = -1;

static void on_rt(int sig, siginfo_t *info, void *context) {
  (void)sig;
  (void)context;
  long value = info->si_value.sival_int;
  if (value != last + 1) disorder++;
  last = value;
  count++;
}

static void on_report(int sig) {
  (void)sig;
  char line[64];
  int n = snprintf(line, sizeof line, "got %ld disorder %ld\n", count, disorder);
  write(1, line, n);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 3 && strcmp(argv[1], "send") == 0) {
    pid_t pid = atoi(argv[2]);
    int n = atoi(argv[3]);
    printf("ready\n");
    for (int i = 0; i < n; i++) {
      union sigval value = {.sival_int = i};
      while (sigqueue(pid, SIGRTMIN, value) != 0) {
        if (errno != EAGAIN) { perror("sigqueue"); return 1; }
      }
    }
    union sigval none = {.sival_int = 0};
    while (sigqueue(pid, SIGRTMIN + 1, none) != 0) {
      if (errno != EAGAIN) { perror("sigqueue"); return 1; }
    }
    printf("sent %d\n", n);
    return 0;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_rt;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  // Else the report, not blocked in the handler, would come between two of the others.
  sigaddset(&sa.sa_mask, SIGRTMIN + 1);
  sigaction(SIGRTMIN, &sa, NULL);
  signal(SIGRTMIN + 1, on_report);
  printf("ready\n");
  for (;;) pause();
}
