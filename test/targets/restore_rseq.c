// A main thread and a worker, each with the rseq area glibc registered for it, waiting for a file
// (argv[1]) to appear. Then each thread overwrites the cpu_id of its own area with a number no
// CPU has, sleeps (the kernel rewrites the area of a registered thread when it schedules it back
// in), and reports what sched_getcpu, which reads the area, says now: the marker if the kernel
// no longer knows the area.
// Prints: ready <rseq_offset> <rseq_size> <main-tid> <worker-tid>
// then:   cpu main <sched_getcpu()>
//         cpu worker <sched_getcpu()>
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/rseq.h>
#include <time.h>
#include <unistd.h>

#define MARKER 0x7ffffff0u

static const char *release_path;
static pthread_barrier_t started;
static volatile pid_t worker_tid;

static struct rseq *own_area(void) {
  char *tp;
  __asm__("mov %%fs:0, %0" : "=r"(tp));
  return (struct rseq *)(tp + __rseq_offset);
}

static void wait_and_report(const char *who) {
  struct timespec nap = {0, 5 * 1000 * 1000};
  while (access(release_path, F_OK) != 0) nanosleep(&nap, NULL);
  volatile struct rseq *area = own_area();
  area->cpu_id = MARKER;
  nanosleep(&nap, NULL);
  printf("cpu %s %d\n", who, sched_getcpu());
  fflush(stdout);
}

static void *worker(void *arg) {
  (void)arg;
  worker_tid = gettid();
  pthread_barrier_wait(&started);
  wait_and_report("worker");
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: restore_rseq <file-to-wait-for>\n");
    return 2;
  }
  release_path = argv[1];
  pthread_barrier_init(&started, NULL, 2);
  pthread_t thread;
  pthread_create(&thread, NULL, worker, NULL);
  pthread_barrier_wait(&started);
  printf("ready %ld %u %d %d\n", (long)__rseq_offset, __rseq_size, gettid(), worker_tid);
  fflush(stdout);
  wait_and_report("main");
  pthread_join(thread, NULL);
  return 0;
}
