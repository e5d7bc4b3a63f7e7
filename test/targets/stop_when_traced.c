// Holds a process at the moment it traces another: spins until /proc/<watched>/status shows
// <tracer> as TracerPid (and <watched>'s name is <comm>, if given), then stops <tracer> (SIGSTOP),
// sends it <signal>, and continues it, so that the signal is handled wherever it was. Prints
// "held traced" if <watched> was still traced by <tracer> while it was stopped, "held untraced"
// if it had let it go by then. A poll in C rather than in the test's event loop: the window can be
// a few milliseconds.
//   stop_when_traced <watched> <tracer> <signal number> [<comm>]
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int tracer_of(int pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int tracer = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "TracerPid:", 10) == 0) { tracer = atoi(line + 10); break; }
  }
  fclose(f);
  return tracer;
}

static int named(int pid, const char *comm) {
  if (!comm) return 1;
  char path[64], name[64] = "";
  snprintf(path, sizeof path, "/proc/%d/comm", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  if (!fgets(name, sizeof name, f)) name[0] = 0;
  fclose(f);
  name[strcspn(name, "\n")] = 0;
  return strcmp(name, comm) == 0;
}

static char state_of(int pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return '?';
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *close = strrchr(buf, ')');
  return close && close[1] == ' ' ? close[2] : '?';
}

int main(int argc, char **argv) {
  if (argc != 4 && argc != 5) { fprintf(stderr, "usage: stop_when_traced <watched> <tracer> <signal> [<comm>]\n"); return 2; }
  int watched = atoi(argv[1]), tracer = atoi(argv[2]), signal = atoi(argv[3]);
  const char *comm = argc == 5 ? argv[4] : NULL;
  // Within the 20 s a test waits for its first line, so that it says why.
  time_t deadline = time(NULL) + 15;
  while (tracer_of(watched) != tracer || !named(watched, comm)) {
    if (time(NULL) > deadline) { printf("never traced\n"); return 1; }
  }
  kill(tracer, SIGSTOP);
  while (state_of(tracer) != 'T') {
    if (time(NULL) > deadline) { printf("never stopped\n"); return 1; }
  }
  printf(tracer_of(watched) == tracer ? "held traced\n" : "held untraced\n");
  fflush(stdout);
  kill(tracer, signal);
  kill(tracer, SIGCONT);
  return 0;
}
