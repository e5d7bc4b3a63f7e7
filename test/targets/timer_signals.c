// A POSIX timer firing every millisecond, whose SA_SIGINFO handler finds its context through the
// signal's si_value (as timer libraries do): a signal that reached it without that value, or
// without SI_TIMER, is counted as bad. Every 50 ms it prints the counts.
// Prints: ready
// then:   ticks <good signals> bad <bad signals>
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <time.h>

struct context { volatile long ticks; };
static struct context timer_context;
static volatile long bad;

static void handler(int sig, siginfo_t *info, void *unused) {
  (void)sig;
  (void)unused;
  if (info->si_code == SI_TIMER && info->si_value.sival_ptr == &timer_context) ((struct context *)info->si_value.sival_ptr)->ticks++;
  else bad++;
}

int main(void) {
  struct sigaction action = {.sa_sigaction = handler, .sa_flags = SA_SIGINFO | SA_RESTART};
  sigaction(SIGRTMIN, &action, NULL);
  struct sigevent event = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN, .sigev_value.sival_ptr = &timer_context};
  timer_t timer;
  struct itimerspec every = {{0, 1000 * 1000}, {0, 1000 * 1000}};
  if (timer_create(CLOCK_MONOTONIC, &event, &timer) != 0 || timer_settime(timer, 0, &every, NULL) != 0) { perror("timer"); return 1; }
  printf("ready\n");
  fflush(stdout);
  struct timespec nap = {0, 50 * 1000 * 1000};
  for (;;) {
    while (nanosleep(&nap, &nap) != 0) {}
    nap.tv_nsec = 50 * 1000 * 1000;
    printf("ticks %ld bad %ld\n", timer_context.ticks, bad);
    fflush(stdout);
  }
}
