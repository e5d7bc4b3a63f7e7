// Waits for SIGUSR1, then runs the program its arguments name, in the same process (execv): what a
// shell does when it runs a set-user-ID program with exec.
// Prints: ready <pid>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, NULL);
  printf("ready %d\n", getpid());
  fflush(stdout);
  int signal;
  sigwait(&usr1, &signal);
  sigprocmask(SIG_UNBLOCK, &usr1, NULL);
  execv(argv[1], argv + 1);
  perror("execv");
  return 1;
}
