// Marks itself non-dumpable, which makes the kernel hand /proc/<pid> to root, then waits.
// Prints: ready
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(void) {
  if (prctl(PR_SET_DUMPABLE, 0) != 0) { perror("prctl"); return 1; }
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
