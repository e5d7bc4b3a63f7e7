// Threads that come and go all the time: four workers each start a thread that ends at once and
// join it, in a loop, so that /proc/<pid>/task always lists threads that are about to be gone.
// Prints: ready
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *brief(void *arg) { return arg; }

static void *churn(void *arg) {
  for (;;) {
    pthread_t t;
    if (pthread_create(&t, NULL, brief, NULL) == 0) pthread_join(t, NULL);
  }
  return arg;
}

int main(void) {
  for (int i = 0; i < 4; i++) {
    pthread_t t;
    pthread_create(&t, NULL, churn, NULL);
  }
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
