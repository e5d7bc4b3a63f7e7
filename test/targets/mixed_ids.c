// Started as root, it drops to nobody in a way that leaves ptrace to root alone, and stays
// dumpable: "saved" keeps root as its saved uid, "group" keeps root's group.
// Prints: ready
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define NOBODY 65534

int main(int argc, char **argv) {
  int saved = argc > 1 && strcmp(argv[1], "saved") == 0;
  if (setgroups(0, NULL) != 0 || (saved && setresgid(NOBODY, NOBODY, NOBODY) != 0) ||
      setresuid(NOBODY, NOBODY, saved ? 0 : NOBODY) != 0) {
    perror("setresuid");
    return 1;
  }
  prctl(PR_SET_DUMPABLE, 1);
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
