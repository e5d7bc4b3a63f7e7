// Four threads, each counting in its own slot and in a thread-local: threads 0 and 1 spin (a
// dump catches them in user code), threads 2 and 3 sleep 20 ms per count (a dump catches them
// inside nanosleep). The main thread prints all counts every 100 ms.
// Prints: ready <slots-address-hex>
// then:   counts <c0> <c1> <c2> <c3> <tls-ok:0|1>
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define THREADS 4

static volatile unsigned long slots[THREADS];
static volatile int tls_ok[THREADS];
static __thread volatile unsigned long mine;
static pthread_barrier_t started;

static void *worker(void *arg) {
  long index = (long)arg;
  mine = 1000000ul * (index + 1);
  pthread_barrier_wait(&started);
  struct timespec nap = {0, 20 * 1000 * 1000};
  for (;;) {
    if (index >= 2) nanosleep(&nap, NULL);
    mine++;
    slots[index]++;
    tls_ok[index] = mine == 1000000ul * (index + 1) + slots[index];
  }
}

int main(void) {
  pthread_t threads[THREADS];
  pthread_barrier_init(&started, NULL, THREADS + 1);
  for (long i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, worker, (void *)i);
  pthread_barrier_wait(&started);
  printf("ready %lx\n", (unsigned long)(uintptr_t)slots);
  fflush(stdout);
  struct timespec nap = {0, 100 * 1000 * 1000};
  for (;;) {
    nanosleep(&nap, NULL);
    printf("counts %lu %lu %lu %lu %d\n", slots[0], slots[1], slots[2], slots[3],
           tls_ok[0] && tls_ok[1] && tls_ok[2] && tls_ok[3]);
    fflush(stdout);
  }
}
