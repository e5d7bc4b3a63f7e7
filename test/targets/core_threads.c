// What the core tests read back through gdb: a global, a heap buffer and a thread-local per
// thread, with every thread parked in a function of its own so that backtraces have a known shape.
// Threads 0..THREADS-1 run core_worker -> core_worker_park (pause); main runs core_main_park.
// core_tls is 0x7150000 + index in each worker and 0x7150fff in main.
// The heap buffer holds "core heap buffer" followed by bytes i & 0xff.
// Prints, once every thread is parked: ready <heap-hex> <tid0> <tid1> ...
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 3
#define HEAP_BYTES (64 * 1024)

long core_global = 0x1122334455667788;
char *core_heap;
__thread long core_tls;

static pid_t tids[THREADS];
static pthread_barrier_t parked;

__attribute__((noinline)) static void core_worker_park(void) {
  for (;;) pause();
}

__attribute__((noinline)) static void *core_worker(void *arg) {
  long index = (long)arg;
  core_tls = 0x7150000 + index;
  tids[index] = gettid();
  pthread_barrier_wait(&parked);
  core_worker_park();
  return NULL;
}

__attribute__((noinline)) static void core_main_park(void) {
  for (;;) pause();
}

// The kernel rewrites each thread's rseq area (cpu_id, mm_cid) whenever the thread returns to user
// space on another CPU, e.g. when a debugger detaches: on one CPU those bytes never change, so
// cores taken at different moments of a parked process compare byte for byte.
static void pin_to_one_cpu(void) {
  cpu_set_t allowed, one;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, &allowed)) { CPU_SET(cpu, &one); break; }
  }
  sched_setaffinity(0, sizeof one, &one);
}

int main(void) {
  pin_to_one_cpu();
  core_tls = 0x7150fff;
  core_heap = malloc(HEAP_BYTES);
  for (int i = 0; i < HEAP_BYTES; i++) core_heap[i] = (char)(i & 0xff);
  strcpy(core_heap, "core heap buffer");

  pthread_t threads[THREADS];
  pthread_barrier_init(&parked, NULL, THREADS + 1);
  for (long i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, core_worker, (void *)i);
  pthread_barrier_wait(&parked);
  printf("ready %lx", (unsigned long)core_heap);
  for (int i = 0; i < THREADS; i++) printf(" %d", tids[i]);
  printf("\n");
  fflush(stdout);
  core_main_park();
}
