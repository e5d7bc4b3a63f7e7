// Starts N threads (argv[1]) that sleep, with small stacks, then prints "ready <pid>" and sleeps too.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *sleeper(void *arg) {
  for (;;) pause();
  return arg;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 100;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  for (int i = 0; i < n; i++) {
    pthread_t thread;
    if (pthread_create(&thread, &attr, sleeper, NULL) != 0) {
      perror("pthread_create");
      return 1;
    }
  }
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  for (;;) pause();
}
