// Two threads waiting with timeouts that the kernel resumes from a restart block when a stop
// interrupts them (as a freeze does): the main thread in poll(NULL, 0, 200 ms), a second one in
// nanosleep(150 ms). Every call that fails (EINTR, say) is counted.
// Prints: ready, then after every poll: tick <n> <failures>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

static volatile int failures;

static void *sleeper(void *arg) {
  (void)arg;
  const struct timespec nap = {0, 150 * 1000 * 1000};
  for (;;) {
    if (nanosleep(&nap, NULL) != 0) failures++;
  }
  return NULL;
}

int main(void) {
  pthread_t thread;
  pthread_create(&thread, NULL, sleeper, NULL);
  printf("ready\n");
  fflush(stdout);
  for (int n = 1;; n++) {
    if (poll(NULL, 0, 200) != 0) failures++;
    printf("tick %d %d\n", n, failures);
    fflush(stdout);
  }
}
