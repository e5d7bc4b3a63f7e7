// A process whose main thread has gone: main starts two workers and calls pthread_exit, which
// leaves the leader a zombie until the whole group ends while the workers run on. Each worker
// counts in its own slot, one count per 10 ms; worker 0 prints both counts every 100 ms.
// Prints (from worker 0, once both run): ready <slots-address-hex> <tid0> <tid1>
// then:                                  counts <c0> <c1>
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 2

static volatile unsigned long slots[WORKERS];
static pid_t tids[WORKERS];
static pthread_barrier_t started;

static void *leader_exit_worker(void *arg) {
  long index = (long)arg;
  tids[index] = gettid();
  pthread_barrier_wait(&started);
  if (index == 0) {
    printf("ready %lx %d %d\n", (unsigned long)(uintptr_t)slots, tids[0], tids[1]);
    fflush(stdout);
  }
  struct timespec nap = {0, 10 * 1000 * 1000};
  for (unsigned long n = 1;; n++) {
    nanosleep(&nap, NULL);
    slots[index]++;
    if (index == 0 && n % 10 == 0) {
      printf("counts %lu %lu\n", slots[0], slots[1]);
      fflush(stdout);
    }
  }
  return NULL;
}

int main(void) {
  pthread_barrier_init(&started, NULL, WORKERS);
  pthread_t thread;
  for (long i = 0; i < WORKERS; i++) pthread_create(&thread, NULL, leader_exit_worker, (void *)i);
  pthread_exit(NULL);
}
