// Handles the signals a restorer passes on, and prints each one it gets: a restored copy of it
// shows which signals sent to the restorer reach it, and how often. SIGTERM keeps its default.
// Prints: ready
// then:   got <signal number>
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static volatile sig_atomic_t pending[65];

static void handler(int sig) { pending[sig]++; }

int main(void) {
  const int handled[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGURG, SIGXCPU, SIGXFSZ,
                         SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR};
  struct sigaction action = {.sa_handler = handler};
  sigset_t blocked, waiting;
  sigemptyset(&blocked);
  for (unsigned i = 0; i < sizeof handled / sizeof handled[0]; i++) {
    sigaction(handled[i], &action, NULL);
    sigaddset(&blocked, handled[i]);
  }
  // Handled only inside sigsuspend: one that comes while the last is printed waits for it.
  sigprocmask(SIG_BLOCK, &blocked, &waiting);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    sigsuspend(&waiting);
    for (int sig = 1; sig < 65; sig++) {
      for (; pending[sig] > 0; pending[sig]--) printf("got %d\n", sig);
    }
    fflush(stdout);
  }
}
