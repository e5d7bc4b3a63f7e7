// An interactive program on a terminal, as an editor or a REPL is: it turns off canonical input
// and echo, reads its keys from /dev/tty (fd 3, as `less` does), counts SIGINTs and notes
// SIGWINCH; continued after a stop, it sets its modes again (the shell put its own back), as
// editors do. For every key it prints what it sees: the key, the SIGINTs so far, whether the
// terminal is still in its modes, whether its process group is the terminal's foreground job, and
// the terminal its standard input is (none if it is not one).
// 'q' ends it with status 7.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include "targets.h"

static volatile sig_atomic_t interrupts;
static volatile sig_atomic_t resized;
static volatile sig_atomic_t continued;

static void on_interrupt(int signal) { (void)signal; interrupts++; }
static void on_resize(int signal) { (void)signal; resized = 1; }
static void on_continue(int signal) { (void)signal; continued = 1; }

int main(void) {
  place(open("/dev/tty", O_RDWR | O_NOCTTY), 3);
  struct termios modes;
  if (tcgetattr(3, &modes) != 0) { perror("tcgetattr"); return 1; }
  modes.c_lflag &= ~(ICANON | ECHO);
  modes.c_cc[VMIN] = 1;
  modes.c_cc[VTIME] = 0;
  if (tcsetattr(3, TCSANOW, &modes) != 0) { perror("tcsetattr"); return 1; }
  // Without SA_RESTART: a signal ends the read, so that a resize is reported at once.
  struct sigaction action = { .sa_handler = on_interrupt };
  sigaction(SIGINT, &action, NULL);
  action.sa_handler = on_resize;
  sigaction(SIGWINCH, &action, NULL);
  action.sa_handler = on_continue;
  sigaction(SIGCONT, &action, NULL);
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("ready %d\r\n", getpid());
  for (;;) {
    char key;
    ssize_t got = read(3, &key, 1);
    if (resized) {
      resized = 0;
      struct winsize size;
      ioctl(3, TIOCGWINSZ, &size);
      printf("winch %d %d\r\n", size.ws_row, size.ws_col);
    }
    if (continued) {
      continued = 0;
      tcsetattr(3, TCSANOW, &modes);
    }
    if (got < 0) {
      if (errno != EINTR) return 3;
      printf("interrupted sigint %d\r\n", (int)interrupts);
      continue;
    }
    if (got == 0) return 2;
    if (key == 'q') return 7;
    struct termios now;
    tcgetattr(3, &now);
    const char *input = ttyname(0);
    printf("key %c sigint %d icanon %d echo %d foreground %d stdin %s\r\n", key >= ' ' ? key : '?', (int)interrupts,
           (now.c_lflag & ICANON) != 0, (now.c_lflag & ECHO) != 0, tcgetpgrp(3) == getpgrp(), input ? input : "none");
  }
}
