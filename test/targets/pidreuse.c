// Keeps one child process at a fixed pid and, on each SIGUSR1, kills it and starts a different
// process at the same pid (clone3 with set_tid, so no other fork can take the pid in between).
// Generation g execs `<program> <g + 1>`, a fresh process image with its own address layout.
// Prints, for each generation before it execs: child <pid> <generation>
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "targets.h"

static const char *program;

static void exec_generation(pid_t helper, int generation) {
  // Dies with the helper, so a test that kills the helper leaves nothing behind.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != helper) _exit(1);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  char arg[16];
  snprintf(arg, sizeof arg, "%d", generation + 1);
  printf("child %d %d\n", getpid(), generation);
  fflush(stdout);
  execl(program, program, arg, (char *)NULL);
  perror(program);
  _exit(1);
}

/** Starts generation's child at pid; returns -1 with errno set (EEXIST: pid taken). */
static pid_t start_child_at(pid_t pid, int generation) {
  pid_t helper = getpid();
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.exit_signal = SIGCHLD;
  args.set_tid = (uintptr_t)&pid;
  args.set_tid_size = 1;
  long child = syscall(SYS_clone3, &args, sizeof args);
  if (child == 0) exec_generation(helper, generation);
  return (pid_t)child;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: pidreuse <program>\n"); return 2; }
  program = argv[1];
  sigset_t usr1 = block_signal(SIGUSR1);

  FILE *pid_max_file = fopen("/proc/sys/kernel/pid_max", "r");
  int pid_max = 32768;
  if (pid_max_file) { if (fscanf(pid_max_file, "%d", &pid_max) != 1) pid_max = 32768; fclose(pid_max_file); }

  pid_t pid = -1;
  for (int i = 0; i < 1000 && pid < 0; i++) {
    pid_t candidate = 300 + (getpid() + 1000 + 7 * i) % (pid_max - 300);
    pid = start_child_at(candidate, 0);
    if (pid < 0 && errno != EEXIST) { perror("clone3"); return 1; }
  }
  if (pid < 0) { fprintf(stderr, "pidreuse: found no free pid\n"); return 1; }

  for (int generation = 1;; generation++) {
    int signal;
    sigwait(&usr1, &signal);
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    if (start_child_at(pid, generation) < 0) { perror("clone3 at the reused pid"); return 1; }
  }
}
