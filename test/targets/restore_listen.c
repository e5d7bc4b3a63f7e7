// Listening and bound sockets, at fixed numbers: 40 a TCP listener on 127.0.0.1 (backlog 37,
// non-blocking, SO_REUSEADDR), 41 a v6-only TCP listener on ::1 (backlog 5, SO_REUSEPORT), 42 a UDP socket bound to
// 127.0.0.1, 43 a Unix stream listener at <path> (backlog 9, its file mode 0770), 44 a Unix
// datagram socket bound to the abstract name "imgfs-listen-<pid>", 45 a dup of 40, and 46 a Unix
// stream listener at "rel.sock", relative to the working directory (the directory of <path>).
// Ports are ephemeral. Options a server sets: 40 SO_KEEPALIVE, TCP_KEEPIDLE 77, SO_RCVBUF 100000,
// TCP_CONGESTION reno, TCP_FASTOPEN 16; 42 IP_PKTINFO, SO_BROADCAST, SO_BINDTODEVICE lo; 44
// SO_PASSCRED; SO_REUSEADDR of 40 last.
// Prints: ready <tcp port> <tcp6 port> <udp port>
// SIGUSR2: prints "options <those values, as getsockopt answers them, in that order>".
// Then serves forever: each connection (TCP, TCP6, both Unix) gets "hello <n>\n", n counting the
// connections served since the start, and is closed; each UDP datagram is answered "echo <text>".
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "targets.h"

static volatile sig_atomic_t options_asked;

static void on_usr2(int sig) {
  (void)sig;
  options_asked = 1;
}

static int int_option(int fd, int level, int name) {
  int value = -1;
  socklen_t length = sizeof value;
  if (getsockopt(fd, level, name, &value, &length)) return -1;
  return value;
}

static void print_options(void) {
  char congestion[16] = "", device[16] = "";
  socklen_t length = sizeof congestion;
  getsockopt(40, IPPROTO_TCP, TCP_CONGESTION, congestion, &length);
  length = sizeof device;
  getsockopt(42, SOL_SOCKET, SO_BINDTODEVICE, device, &length);
  printf("options %d %d %d %s %d %d %d %s %d %d\n", int_option(40, SOL_SOCKET, SO_KEEPALIVE), int_option(40, IPPROTO_TCP, TCP_KEEPIDLE),
         int_option(40, SOL_SOCKET, SO_RCVBUF), congestion, int_option(40, IPPROTO_TCP, TCP_FASTOPEN), int_option(42, IPPROTO_IP, IP_PKTINFO),
         int_option(42, SOL_SOCKET, SO_BROADCAST), device, int_option(44, SOL_SOCKET, SO_PASSCRED), int_option(40, SOL_SOCKET, SO_REUSEADDR));
  fflush(stdout);
}

static int port_of(int fd) {
  struct sockaddr_in6 address;
  socklen_t length = sizeof address;
  if (getsockname(fd, (struct sockaddr *) &address, &length)) { perror("getsockname"); _exit(1); }
  return ntohs(address.sin6_port); // sin_port and sin6_port lie at the same offset
}

static int inet_socket(int type, int backlog) {
  int fd = socket(AF_INET, type, 0), one = 1;
  // As servers do: else the port could not be bound again while its closed connections wait in
  // TIME_WAIT (they keep the listener's flag), by a restore nor by the program started anew.
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || bind(fd, (struct sockaddr *) &address, sizeof address)) { perror("bind inet"); _exit(1); }
  if (backlog && listen(fd, backlog)) { perror("listen"); _exit(1); }
  return fd;
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: restore_listen <unix-socket-path>\n"); return 2; }
  int one = 1;

  place(inet_socket(SOCK_STREAM, 37), 40);
  fcntl(40, F_SETFL, O_NONBLOCK);
  int idle = 77, rcvbuf = 100000, queue = 16;
  setsockopt(40, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  setsockopt(40, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(40, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  setsockopt(40, IPPROTO_TCP, TCP_CONGESTION, "reno", 4);
  setsockopt(40, IPPROTO_TCP, TCP_FASTOPEN, &queue, sizeof queue);

  int tcp6 = socket(AF_INET6, SOCK_STREAM, 0);
  setsockopt(tcp6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  setsockopt(tcp6, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  struct sockaddr_in6 address6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  if (bind(tcp6, (struct sockaddr *) &address6, sizeof address6) || listen(tcp6, 5)) { perror("tcp6"); return 1; }
  place(tcp6, 41);

  place(inet_socket(SOCK_DGRAM, 0), 42);
  setsockopt(42, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
  setsockopt(42, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
  if (setsockopt(42, SOL_SOCKET, SO_BINDTODEVICE, "lo", 2)) { perror("SO_BINDTODEVICE"); return 1; }

  int unix_stream = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un path = {.sun_family = AF_UNIX};
  strncpy(path.sun_path, argv[1], sizeof path.sun_path - 1);
  if (bind(unix_stream, (struct sockaddr *) &path, sizeof path) || listen(unix_stream, 9)) { perror("unix"); return 1; }
  if (chmod(argv[1], 0770)) { perror("chmod"); return 1; }
  place(unix_stream, 43);

  // A path relative to the working directory, the socket's own directory.
  char dir[sizeof path.sun_path];
  strcpy(dir, argv[1]);
  *strrchr(dir, '/') = 0;
  if (chdir(dir)) { perror("chdir"); return 1; }
  int relative = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un relative_path = {.sun_family = AF_UNIX, .sun_path = "rel.sock"};
  if (bind(relative, (struct sockaddr *) &relative_path, sizeof relative_path) || listen(relative, 3)) { perror("relative"); return 1; }
  place(relative, 46);

  int unix_dgram = socket(AF_UNIX, SOCK_DGRAM, 0);
  struct sockaddr_un abstract = {.sun_family = AF_UNIX};
  int name = snprintf(abstract.sun_path + 1, sizeof abstract.sun_path - 1, "imgfs-listen-%d", getpid());
  if (bind(unix_dgram, (struct sockaddr *) &abstract, offsetof(struct sockaddr_un, sun_path) + 1 + name)) { perror("abstract"); return 1; }
  place(unix_dgram, 44);
  setsockopt(44, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  signal(SIGUSR2, on_usr2);

  if (dup2(40, 45) != 45) { perror("dup2"); return 1; }

  printf("ready %d %d %d\n", port_of(40), port_of(41), port_of(42));
  fflush(stdout);

  long served = 0;
  struct pollfd fds[] = {{.fd = 40, .events = POLLIN}, {.fd = 41, .events = POLLIN}, {.fd = 42, .events = POLLIN}, {.fd = 43, .events = POLLIN}, {.fd = 46, .events = POLLIN}};
  for (;;) {
    if (options_asked) {
      options_asked = 0;
      print_options();
    }
    if (poll(fds, 5, -1) < 0) continue;
    for (int i = 0; i < 5; i++) {
      if (!(fds[i].revents & POLLIN)) continue;
      if (fds[i].fd == 42) {
        char text[256], reply[300];
        struct sockaddr_in from;
        socklen_t length = sizeof from;
        ssize_t got = recvfrom(42, text, sizeof text - 1, 0, (struct sockaddr *) &from, &length);
        if (got < 0) continue;
        text[got] = 0;
        int n = snprintf(reply, sizeof reply, "echo %s", text);
        sendto(42, reply, n, 0, (struct sockaddr *) &from, length);
        continue;
      }
      int client = accept(fds[i].fd, NULL, NULL);
      if (client < 0) continue;
      char line[64];
      int n = snprintf(line, sizeof line, "hello %ld\n", ++served);
      if (write(client, line, n) != n) perror("write");
      close(client);
    }
  }
}
