// Starts 4 threads, each with a __thread variable set to 0x7e57000 + index; threads 0 and 1 spin,
// threads 2 and 3 sleep in a loop. Prints, once all run: ready <tid0> <tid1> <tid2> <tid3>
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4

static __thread volatile long thread_value;
static pid_t tids[THREADS];
static pthread_barrier_t started;

static void *worker(void *arg) {
  long index = (long)arg;
  thread_value = 0x7e57000 + index;
  tids[index] = gettid();
  pthread_barrier_wait(&started);
  struct timespec nap = {0, 50 * 1000 * 1000};
  for (;;) {
    if (index < 2) thread_value++;
    else nanosleep(&nap, NULL);
  }
}

int main(void) {
  pthread_t threads[THREADS];
  pthread_barrier_init(&started, NULL, THREADS + 1);
  for (long i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, worker, (void *)i);
  pthread_barrier_wait(&started);
  printf("ready %d %d %d %d\n", tids[0], tids[1], tids[2], tids[3]);
  fflush(stdout);
  for (;;) pause();
}
