// A tracer and its tracee: forks a child that asks to be traced (PTRACE_TRACEME) and stops; the
// parent lets it run on and waits for it, its tracer for as long as it lives. The child counts,
// and dies with its parent.
// Prints: ready <child-pid> <counter-hex>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile unsigned long counter;

int main(void) {
  pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) return 1;
    raise(SIGSTOP);
    for (;;) {
      counter++;
      usleep(1000);
    }
  }
  int status;
  if (waitpid(child, &status, 0) != child || !WIFSTOPPED(status)) return 1;
  if (ptrace(PTRACE_CONT, child, NULL, NULL) != 0) return 1;
  printf("ready %d %lx\n", child, (unsigned long)(uintptr_t)&counter);
  fflush(stdout);
  // Passes on every signal the child gets, as a debugger that lets it run would.
  for (;;) {
    if (waitpid(child, &status, 0) != child || WIFEXITED(status) || WIFSIGNALED(status)) return 0;
    ptrace(PTRACE_CONT, child, NULL, (void *)(long)(WIFSTOPPED(status) ? WSTOPSIG(status) : 0));
  }
}
