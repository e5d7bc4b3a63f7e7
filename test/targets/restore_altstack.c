// A main thread and a worker, each with an alternate signal stack of its own and a SIGUSR1
// handler installed with SA_ONSTACK, waiting for a file (argv[1]) to appear. Then each raises
// SIGUSR1 in itself; the handler notes whether it runs on the thread's alternate stack (a local
// variable's address inside it, and sigaltstack's SS_ONSTACK).
// Prints: ready <main-stack> <worker-stack> <size>
// then:   onstack main <address-inside 0|1> <SS_ONSTACK 0|1>
//         onstack worker <address-inside 0|1> <SS_ONSTACK 0|1>
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STACK_SIZE (64 * 1024)

static const char *release_path;
static char *stacks[2];
static pthread_barrier_t started;
static __thread int own_index;
static __thread volatile int inside, flagged;

static void handler(int sig) {
  (void)sig;
  char here;
  stack_t current;
  inside = &here > stacks[own_index] && &here < stacks[own_index] + STACK_SIZE;
  flagged = sigaltstack(NULL, &current) == 0 && (current.ss_flags & SS_ONSTACK);
}

static void install_stack(int index) {
  own_index = index;
  stack_t stack = {.ss_sp = stacks[index], .ss_size = STACK_SIZE, .ss_flags = 0};
  if (sigaltstack(&stack, NULL) != 0) {
    perror("sigaltstack");
    exit(1);
  }
}

static void wait_and_report(const char *who) {
  struct timespec nap = {0, 5 * 1000 * 1000};
  while (access(release_path, F_OK) != 0) nanosleep(&nap, NULL);
  pthread_kill(pthread_self(), SIGUSR1);
  printf("onstack %s %d %d\n", who, inside, flagged);
  fflush(stdout);
}

static void *worker(void *arg) {
  (void)arg;
  install_stack(1);
  pthread_barrier_wait(&started);
  wait_and_report("worker");
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: restore_altstack <file-to-wait-for>\n");
    return 2;
  }
  release_path = argv[1];
  stacks[0] = malloc(STACK_SIZE);
  stacks[1] = malloc(STACK_SIZE);
  install_stack(0);
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = handler;
  action.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR1, &action, NULL);
  pthread_barrier_init(&started, NULL, 2);
  pthread_t thread;
  pthread_create(&thread, NULL, worker, NULL);
  pthread_barrier_wait(&started);
  printf("ready %lx %lx %d\n", (unsigned long)stacks[0], (unsigned long)stacks[1], STACK_SIZE);
  fflush(stdout);
  wait_and_report("main");
  pthread_join(thread, NULL);
  return 0;
}
