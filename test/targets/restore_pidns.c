// A program that remembers its ids: its pid (getpid at start) and a second thread's tid (gettid
// in that thread), as asyncio or dnsmasq remember theirs.
// Prints: ready <pid> <thread's tid>
// On SIGUSR1: "pid <getpid()> cached <the pid it remembers> tid <the thread's tid it remembers>",
// then signals the thread twice, by pthread_kill (glibc's cached tid) and by tgkill with the ids
// it remembers, and prints "signals <how many the thread got>"; then forks a child that exits
// with 7 and prints "child <its exit status>"; then "done".
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "targets.h"

static pid_t cached_pid;
static atomic_int thread_tid;
static atomic_int thread_signals;

static void on_usr2(int signal) {
  (void) signal;
  atomic_fetch_add(&thread_signals, 1);
}

static void *worker(void *unused) {
  (void) unused;
  atomic_store(&thread_tid, (int) gettid());
  for (;;) pause();
  return NULL;
}

int main(void) {
  cached_pid = getpid();
  // SIGUSR1 is taken by sigwait in main (the worker inherits it blocked); SIGUSR2 only by the
  // worker's handler.
  sigset_t usr1 = block_signal(SIGUSR1);
  signal(SIGUSR2, on_usr2);
  pthread_t thread;
  if (pthread_create(&thread, NULL, worker, NULL)) { perror("pthread_create"); return 1; }
  block_signal(SIGUSR2); // in main only: the worker takes it
  while (atomic_load(&thread_tid) == 0) usleep(1000);
  printf("ready %d %d\n", cached_pid, atomic_load(&thread_tid));
  fflush(stdout);
  for (int signal; sigwait(&usr1, &signal) == 0;) {
    printf("pid %d cached %d tid %d\n", getpid(), cached_pid, atomic_load(&thread_tid));
    int before = atomic_load(&thread_signals);
    if (pthread_kill(thread, SIGUSR2)) perror("pthread_kill");
    while (atomic_load(&thread_signals) < before + 1) usleep(1000);
    if (syscall(SYS_tgkill, cached_pid, atomic_load(&thread_tid), SIGUSR2)) perror("tgkill");
    while (atomic_load(&thread_signals) < before + 2) usleep(1000);
    printf("signals %d\n", atomic_load(&thread_signals) - before);
    pid_t child = fork();
    if (child == 0) _exit(7);
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child) perror("fork");
    printf("child %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    printf("done\n");
    fflush(stdout);
  }
  return 1;
}
