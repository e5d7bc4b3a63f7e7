// Pending signals: both threads block SIGUSR1 and SIGUSR2, and the main thread queues SIGUSR2
// with value 7 to the worker (the worker's own queue); whoever starts it queues SIGUSR1 to the
// process (the shared queue). Once a file (argv[1]) appears, the main thread unblocks SIGUSR1 and
// the worker SIGUSR2, and each reports what its SA_SIGINFO handler received.
// Prints: ready <main-tid> <worker-tid>
// then:   got main <signal> <si_code> <si_pid> <si_value>
//         got worker <signal> <si_code> <si_pid> <si_value>
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *release_path;
static pthread_barrier_t started;
static volatile pid_t worker_tid;
static __thread volatile int got_signal, got_code, got_pid, got_value;

static void handler(int sig, siginfo_t *info, void *context) {
  (void)context;
  got_signal = sig;
  got_code = info->si_code;
  got_pid = info->si_pid;
  got_value = info->si_value.sival_int;
}

static void wait_and_take(const char *who, int sig) {
  struct timespec nap = {0, 5 * 1000 * 1000};
  while (access(release_path, F_OK) != 0) nanosleep(&nap, NULL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  printf("got %s %d %d %d %d\n", who, got_signal, got_code, got_pid, got_value);
  fflush(stdout);
}

static void *worker(void *arg) {
  (void)arg;
  worker_tid = gettid();
  pthread_barrier_wait(&started);
  pthread_barrier_wait(&started); // the signal is queued
  wait_and_take("worker", SIGUSR2);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: restore_signals <file-to-wait-for>\n");
    return 2;
  }
  release_path = argv[1];
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = handler;
  action.sa_flags = SA_SIGINFO;
  sigaction(SIGUSR1, &action, NULL);
  sigaction(SIGUSR2, &action, NULL);
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGUSR1);
  sigaddset(&blocked, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &blocked, NULL);
  pthread_barrier_init(&started, NULL, 2);
  pthread_t thread;
  pthread_create(&thread, NULL, worker, NULL);
  pthread_barrier_wait(&started);
  pthread_sigqueue(thread, SIGUSR2, (union sigval){.sival_int = 7});
  pthread_barrier_wait(&started);
  printf("ready %d %d\n", gettid(), worker_tid);
  fflush(stdout);
  wait_and_take("main", SIGUSR1);
  pthread_join(thread, NULL);
  return 0;
}
