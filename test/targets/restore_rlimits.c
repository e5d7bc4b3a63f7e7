// Lowers some of its resource limits, with a real-time signal queued to itself (blocked) before it
// drops RLIMIT_SIGPENDING to 0, under which no signal can be queued any more; then waits for a file
// (argv[1]) to appear, unblocks the signal and reports what its handler received.
// Prints: ready
// then:   got <signal> <si_value>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static volatile int got_signal, got_value;

static void handler(int sig, siginfo_t *info, void *context) {
  (void)context;
  got_signal = sig;
  got_value = info->si_value.sival_int;
}

static void limit(int resource, rlim_t soft, rlim_t hard) {
  struct rlimit lim = {soft, hard};
  if (setrlimit(resource, &lim) != 0) perror("restore_rlimits: setrlimit");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: restore_rlimits <file-to-wait-for>\n");
    return 2;
  }
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = handler;
  action.sa_flags = SA_SIGINFO;
  sigaction(SIGRTMIN, &action, NULL);
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGRTMIN);
  sigprocmask(SIG_BLOCK, &blocked, NULL);
  sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 5});
  limit(RLIMIT_NOFILE, 100, 200);
  limit(RLIMIT_CORE, 0, 0);
  limit(RLIMIT_STACK, 4 << 20, RLIM_INFINITY);
  limit(RLIMIT_CPU, 3600, 7200);
  limit(RLIMIT_SIGPENDING, 0, 0);
  printf("ready\n");
  fflush(stdout);
  struct timespec nap = {0, 5 * 1000 * 1000};
  while (access(argv[1], F_OK) != 0) nanosleep(&nap, NULL);
  sigprocmask(SIG_UNBLOCK, &blocked, NULL);
  printf("got %d %d\n", got_signal, got_value);
  fflush(stdout);
  return 0;
}
