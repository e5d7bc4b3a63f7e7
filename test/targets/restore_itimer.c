// Arms ITIMER_REAL to fire every 200 ms, counting SIGALRMs in a handler, and ITIMER_PROF with 100 s
// of CPU time left and a 7 s interval (it never fires). Reports each tick; once a file (argv[1])
// appears, reports what is left of ITIMER_PROF and exits.
// Prints: ready
// then:   tick <count>         (every 200 ms)
//         prof <interval-s> <value-s>
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t ticks;

static void handler(int sig) {
  (void)sig;
  ticks++;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: restore_itimer <file-to-wait-for>\n");
    return 2;
  }
  struct sigaction action = {.sa_handler = handler, .sa_flags = SA_RESTART};
  sigaction(SIGALRM, &action, NULL);
  struct itimerval prof = {{7, 0}, {100, 0}};
  struct itimerval real = {{0, 200 * 1000}, {0, 200 * 1000}};
  setitimer(ITIMER_PROF, &prof, NULL);
  setitimer(ITIMER_REAL, &real, NULL);
  printf("ready\n");
  fflush(stdout);
  int reported = 0;
  while (access(argv[1], F_OK) != 0) {
    pause();
    if (ticks != reported) {
      reported = ticks;
      printf("tick %d\n", reported);
      fflush(stdout);
    }
  }
  getitimer(ITIMER_PROF, &prof);
  printf("prof %ld %ld\n", (long)prof.it_interval.tv_sec, (long)prof.it_value.tv_sec);
  fflush(stdout);
  return 0;
}
