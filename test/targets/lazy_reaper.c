// A subreaper that never reaps what it inherits: runs `<program> [args]` as its child, waits for
// that child alone, prints "ready <its exit status>", then pauses. A process the child left
// running stays, once it exits, a zombie for as long as this one lives (as under a slow init).
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: lazy_reaper <program> [args]\n"); return 2; }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) { perror("PR_SET_CHILD_SUBREAPER"); return 1; }
  pid_t child = fork();
  if (child < 0) { perror("fork"); return 1; }
  if (child == 0) {
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    _exit(127);
  }
  int status;
  if (waitpid(child, &status, 0) != child) { perror("waitpid"); return 1; }
  printf("ready %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  fflush(stdout);
  for (;;) pause();
}
