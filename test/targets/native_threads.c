// A multi-threaded target for the freeze tests. Prints "ready <pid>", then "tick <n>" every 50 ms.
//   native_threads          2 spinning and 2 sleeping threads; SIGUSR1 prints "usr1 <count>"
//   native_threads churn    also a thread that keeps creating threads that exit at once
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile long spins;
static volatile sig_atomic_t usr1_count;

static void on_usr1(int sig) {
  (void)sig;
  char line[32];
  int n = snprintf(line, sizeof line, "usr1 %d\n", (int)++usr1_count);
  write(1, line, n);
}

static void *spinner(void *arg) {
  (void)arg;
  for (;;) spins++;
}

static void *sleeper(void *arg) {
  (void)arg;
  struct timespec nap = {0, 30 * 1000 * 1000};
  for (;;) nanosleep(&nap, NULL);
}

static void *short_lived(void *arg) {
  return arg;
}

static void *churner(void *arg) {
  (void)arg;
  for (;;) {
    pthread_t t;
    if (pthread_create(&t, NULL, short_lived, NULL) == 0) pthread_detach(t);
  }
}

int main(int argc, char **argv) {
  signal(SIGUSR1, on_usr1);
  pthread_t t;
  for (int i = 0; i < 2; i++) pthread_create(&t, NULL, spinner, NULL);
  for (int i = 0; i < 2; i++) pthread_create(&t, NULL, sleeper, NULL);
  if (argc > 1 && strcmp(argv[1], "churn") == 0) pthread_create(&t, NULL, churner, NULL);
  printf("ready %d\n", getpid());
  fflush(stdout);
  struct timespec nap = {0, 50 * 1000 * 1000};
  for (long n = 0;; n++) {
    printf("tick %ld\n", n);
    fflush(stdout);
    while (nanosleep(&nap, &nap) != 0) {}
    nap.tv_nsec = 50 * 1000 * 1000;
  }
}
