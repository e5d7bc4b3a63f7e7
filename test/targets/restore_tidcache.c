// A main thread that signals its worker thread with pthread_kill, which glibc addresses with the
// worker's tid as it cached it in the thread descriptor when the thread was created. Each SIGUSR2
// to the process (blocked everywhere, taken by the main thread's sigwaitinfo, so none is lost
// however early it comes) makes the main thread pthread_kill(worker, SIGUSR1) and print the
// result; the worker prints what it received.
// Prints: ready <main-tid> <worker-tid>
// then, per SIGUSR2: kill <pthread_kill's result> | usr1 <the worker's tid now>
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include "targets.h"

static volatile sig_atomic_t received;
static volatile pid_t worker_tid;

static void on_usr1(int sig) { (void)sig; received = 1; }

static void *worker(void *arg) {
  (void)arg;
  worker_tid = gettid();
  for (;;) {
    pause();
    if (received) {
      received = 0;
      printf("usr1 %d\n", gettid());
      fflush(stdout);
    }
  }
  return NULL;
}

int main(void) {
  signal(SIGUSR1, on_usr1);
  sigset_t usr2 = block_signal(SIGUSR2); // the worker inherits it
  pthread_t thread;
  pthread_create(&thread, NULL, worker, NULL);
  while (worker_tid == 0) usleep(1000);
  printf("ready %d %d\n", gettid(), worker_tid);
  fflush(stdout);
  for (;;) {
    if (sigwaitinfo(&usr2, NULL) != SIGUSR2) continue; // EINTR: a dump came by
    printf("kill %d\n", pthread_kill(thread, SIGUSR1));
    fflush(stdout);
  }
}
