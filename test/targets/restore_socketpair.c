// A self-pipe made with socketpair(2), as Python's asyncio makes one: fds 40 and 41, a stream pair,
// both non-blocking; the SIGUSR1 handler writes a byte into 41, and the loop poll()s 40. Beside it
// a seqpacket pair at 42 and 43, whose messages sent into 43 the loop reads from 42.
// Prints: ready
// then, for each wake-up: woke <bytes read> <first byte>; "closed" if 40 reads the end of the
// stream (what /dev/null in its place would give); for each message: message <length> <text>.
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>
#include "targets.h"

static void on_usr1(int signal) {
  (void)signal;
  char byte = 's';
  if (write(41, &byte, 1) != 1) _exit(3);
}

static void place_nonblocking(int fd, int at) {
  place(fd, at);
  fcntl(at, F_SETFL, O_NONBLOCK);
}

int main(void) {
  int ends[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, ends)) { perror("socketpair"); return 1; }
  place_nonblocking(ends[0], 40);
  place_nonblocking(ends[1], 41);
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, ends)) { perror("socketpair"); return 1; }
  place_nonblocking(ends[0], 42);
  place_nonblocking(ends[1], 43);
  struct sigaction action = {.sa_handler = on_usr1, .sa_flags = SA_RESTART};
  sigaction(SIGUSR1, &action, NULL);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    struct pollfd wait[] = {{.fd = 40, .events = POLLIN}, {.fd = 42, .events = POLLIN}};
    if (poll(wait, 2, -1) < 1) continue;
    char message[64];
    ssize_t length;
    while ((length = read(42, message, sizeof message - 1)) > 0) {
      message[length] = 0;
      printf("message %zd %s\n", length, message);
      fflush(stdout);
    }
    if (!(wait[0].revents & POLLIN)) continue;
    char bytes[16];
    ssize_t got = read(40, bytes, sizeof bytes);
    if (got == 0) { printf("closed\n"); fflush(stdout); return 2; }
    if (got > 0) { printf("woke %zd %c\n", got, bytes[0]); fflush(stdout); }
  }
}
