// A main thread blocked in pthread_join on a worker that holds a robust mutex and waits for a
// file (argv[1]) to appear, then returns with the mutex still locked. Once joined, the main
// thread tries the mutex: the kernel, walking the dead worker's robust list, marked it owner-died.
// Both need what the kernel does at the worker's exit: clear its tid word and wake the joiner
// (clear_child_tid), and walk its robust list.
// Prints: ready <main-tid> <worker-tid>
// then:   joined
//         robust owner-died | robust timeout | robust <errno>
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t robust;
static pthread_barrier_t locked;
static volatile pid_t worker_tid;

static void *worker(void *arg) {
  const char *path = arg;
  pthread_mutex_lock(&robust);
  worker_tid = gettid();
  pthread_barrier_wait(&locked);
  struct timespec nap = {0, 10 * 1000 * 1000};
  while (access(path, F_OK) != 0) nanosleep(&nap, NULL);
  return NULL; // the mutex stays locked: its owner dies
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: restore_join <file-to-wait-for>\n");
    return 2;
  }
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&robust, &attr);
  pthread_barrier_init(&locked, NULL, 2);
  pthread_t thread;
  pthread_create(&thread, NULL, worker, argv[1]);
  pthread_barrier_wait(&locked);
  printf("ready %d %d\n", gettid(), worker_tid);
  fflush(stdout);
  pthread_join(thread, NULL);
  printf("joined\n");
  fflush(stdout);
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 2;
  int locked_result = pthread_mutex_timedlock(&robust, &deadline);
  if (locked_result == EOWNERDEAD) printf("robust owner-died\n");
  else if (locked_result == ETIMEDOUT) printf("robust timeout\n");
  else printf("robust %s\n", strerror(locked_result));
  fflush(stdout);
  return 0;
}
