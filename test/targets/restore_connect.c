// A client with connections to servers outside it, at fixed numbers: 40 a TCP connection to
// 127.0.0.1:<tcp port> (non-blocking, watched by the epoll instance at 50 for EPOLLIN|EPOLLRDHUP
// with data 40), 41 a UDP socket connected to 127.0.0.1:<udp port> with IP_TOS 0x10, 42 a Unix datagram socket
// connected to <datagram path>, 43 a Unix stream connection to <stream path>, 44 a dup of 40,
// 45 a TCP connection to [::1]:<tcp6 port>, 46 a UDP socket connected to [::1]:<udp6 port>.
//   restore_connect <tcp port> <udp port> <datagram path> <stream path> <tcp6 port> <udp6 port>
// Prints: ready
// On SIGUSR1 it uses each, once, and prints what it met:
//   sent udp, sent unixdgram, sent udp6 <result> <errno> (the datagram "hello <pid>" to each)
//   tos <IP_TOS of 41, hex>
//   epoll <count> <fd of the event> <events, hex>   (epoll_wait, 2 s at most)
//   tcp read <result> <errno> write <result> <errno>; unix, tcp6 likewise   (MSG_NOSIGNAL)
//   done
//   restore_connect receive <datagram path>
// binds a Unix datagram socket to the path, prints "ready", then each datagram it gets as a line.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "targets.h"

static struct sockaddr_un unix_address(const char *path) {
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  strncpy(address.sun_path, path, sizeof address.sun_path - 1);
  return address;
}

static int connected(int family, int type, const void *address, socklen_t length) {
  int fd = socket(family, type, 0);
  if (fd < 0 || connect(fd, address, length)) { perror("connect"); _exit(1); }
  return fd;
}

static int receive(const char *path) {
  struct sockaddr_un address = unix_address(path);
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *) &address, sizeof address)) { perror("bind"); return 1; }
  printf("ready\n");
  fflush(stdout);
  char text[256];
  for (;;) {
    ssize_t got = recv(fd, text, sizeof text - 1, 0);
    if (got < 0) { perror("recv"); return 1; }
    text[got] = 0;
    printf("%s\n", text);
    fflush(stdout);
  }
}

static volatile sig_atomic_t asked;

static void on_usr1(int signal) {
  (void)signal;
  asked = 1;
}

static void use_stream(const char *name, int fd) {
  char byte;
  ssize_t got = read(fd, &byte, 1);
  int read_errno = got < 0 ? errno : 0;
  ssize_t sent = send(fd, "x", 1, MSG_NOSIGNAL);
  printf("%s read %zd %d write %zd %d\n", name, got, read_errno, sent, sent < 0 ? errno : 0);
}

static void use_all(void) {
  char hello[64];
  snprintf(hello, sizeof hello, "hello %d", getpid());
  ssize_t sent = send(41, hello, strlen(hello), 0);
  printf("sent udp %zd %d\n", sent, sent < 0 ? errno : 0);
  sent = send(42, hello, strlen(hello), 0);
  printf("sent unixdgram %zd %d\n", sent, sent < 0 ? errno : 0);
  sent = send(46, hello, strlen(hello), 0);
  printf("sent udp6 %zd %d\n", sent, sent < 0 ? errno : 0);
  int tos = 0;
  socklen_t length = sizeof tos;
  getsockopt(41, IPPROTO_IP, IP_TOS, &tos, &length);
  printf("tos %x\n", tos);
  struct epoll_event event = {0};
  int count = epoll_wait(50, &event, 1, 2000);
  printf("epoll %d %d %x\n", count, count == 1 ? (int) event.data.u64 : -1, count == 1 ? event.events : 0);
  use_stream("tcp", 40);
  use_stream("unix", 43);
  use_stream("tcp6", 45);
  printf("done\n");
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "receive") == 0) return receive(argv[2]);
  if (argc != 7) { fprintf(stderr, "usage: restore_connect <tcp port> <udp port> <datagram path> <stream path> <tcp6 port> <udp6 port>\n"); return 2; }
  struct sockaddr_in tcp = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in udp = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_un datagram = unix_address(argv[3]), stream = unix_address(argv[4]);
  struct sockaddr_in6 tcp6 = {.sin6_family = AF_INET6, .sin6_port = htons(atoi(argv[5])), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  struct sockaddr_in6 udp6 = {.sin6_family = AF_INET6, .sin6_port = htons(atoi(argv[6])), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  place(connected(AF_INET, SOCK_STREAM, &tcp, sizeof tcp), 40);
  fcntl(40, F_SETFL, O_NONBLOCK);
  place(connected(AF_INET, SOCK_DGRAM, &udp, sizeof udp), 41);
  int tos = 0x10;
  if (setsockopt(41, IPPROTO_IP, IP_TOS, &tos, sizeof tos)) { perror("IP_TOS"); return 1; }
  place(connected(AF_UNIX, SOCK_DGRAM, &datagram, sizeof datagram), 42);
  place(connected(AF_UNIX, SOCK_STREAM, &stream, sizeof stream), 43);
  if (dup2(40, 44) != 44) { perror("dup2"); return 1; }
  place(connected(AF_INET6, SOCK_STREAM, &tcp6, sizeof tcp6), 45);
  place(connected(AF_INET6, SOCK_DGRAM, &udp6, sizeof udp6), 46);
  place(epoll_create1(0), 50);
  struct epoll_event watch = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = 40};
  if (epoll_ctl(50, EPOLL_CTL_ADD, 40, &watch)) { perror("epoll_ctl"); return 1; }
  signal(SIGUSR1, on_usr1);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    pause();
    if (asked) {
      asked = 0;
      use_all();
    }
  }
}
