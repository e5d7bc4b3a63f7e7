// Sockets bound to no address, at fixed numbers: 40 UDP over IPv4 with SO_BROADCAST and a larger
// SO_RCVBUF, 41 TCP over IPv6 with SO_REUSEADDR and IPV6_V6ONLY, 42 an unnamed Unix datagram
// socket, 43 an epoll instance watching 40 for input, 44 a raw ICMP socket over IPv4.
// Prints: "options <SO_BROADCAST of 40> <SO_RCVBUF of 40> <SO_REUSEADDR of 41> <IPV6_V6ONLY of 41>",
// then "ready".
// On SIGUSR1: the same options line; "kind <fd> <SO_DOMAIN> <SO_TYPE> <SO_PROTOCOL>" for 40, 41,
// 42 and 44; then uses each: 40 sends to a new UDP receiver and gets its reply, which epoll 43
// reports ("udp <what the receiver got> <the reply 40 got> epoll <the data of the event>"); 42
// sends to a new Unix datagram receiver ("unix <what it got>"); 41 binds to [::1] port 0 and
// listens ("tcp listens"); then "done".
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "targets.h"

static void fail(const char *what) {
  perror(what);
  _exit(1);
}

static int option(int fd, int level, int name) {
  int value = 0;
  socklen_t length = sizeof value;
  if (getsockopt(fd, level, name, &value, &length)) fail("getsockopt");
  return value;
}

static void set_option(int fd, int level, int name, int value) {
  if (setsockopt(fd, level, name, &value, sizeof value)) fail("setsockopt");
}

static void print_options(void) {
  printf("options %d %d %d %d\n", option(40, SOL_SOCKET, SO_BROADCAST), option(40, SOL_SOCKET, SO_RCVBUF),
         option(41, SOL_SOCKET, SO_REUSEADDR), option(41, IPPROTO_IPV6, IPV6_V6ONLY));
}

static void use_udp(void) {
  int receiver = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t length = sizeof address;
  if (receiver < 0 || bind(receiver, (struct sockaddr *) &address, sizeof address) ||
      getsockname(receiver, (struct sockaddr *) &address, &length)) fail("receiver");
  if (sendto(40, "ping", 4, 0, (struct sockaddr *) &address, sizeof address) != 4) fail("sendto 40");
  char got[16] = {0}, reply[16] = {0};
  struct sockaddr_in from;
  socklen_t from_length = sizeof from;
  if (recvfrom(receiver, got, sizeof got - 1, 0, (struct sockaddr *) &from, &from_length) < 0) fail("recvfrom");
  if (sendto(receiver, "pong", 4, 0, (struct sockaddr *) &from, from_length) != 4) fail("reply");
  struct epoll_event event;
  if (epoll_wait(43, &event, 1, 5000) != 1) fail("epoll_wait");
  if (recv(40, reply, sizeof reply - 1, 0) < 0) fail("recv 40");
  printf("udp %s %s epoll %llu\n", got, reply, (unsigned long long) event.data.u64);
  close(receiver);
}

static void use_unix(void) {
  int receiver = socket(AF_UNIX, SOCK_DGRAM, 0);
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  int length = snprintf(address.sun_path + 1, sizeof address.sun_path - 1, "imgfs-unbound-%d", getpid()) + 1;
  socklen_t size = offsetof(struct sockaddr_un, sun_path) + length;
  if (receiver < 0 || bind(receiver, (struct sockaddr *) &address, size)) fail("unix receiver");
  if (sendto(42, "hello", 5, 0, (struct sockaddr *) &address, size) != 5) fail("sendto 42");
  char got[16] = {0};
  if (recv(receiver, got, sizeof got - 1, 0) < 0) fail("unix recv");
  printf("unix %s\n", got);
  close(receiver);
}

static void use_tcp(void) {
  struct sockaddr_in6 address = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  if (bind(41, (struct sockaddr *) &address, sizeof address) || listen(41, 4)) fail("tcp");
  printf("tcp listens\n");
}

static void print_kind(int fd) {
  printf("kind %d %d %d %d\n", fd, option(fd, SOL_SOCKET, SO_DOMAIN), option(fd, SOL_SOCKET, SO_TYPE), option(fd, SOL_SOCKET, SO_PROTOCOL));
}

int main(void) {
  int udp = socket(AF_INET, SOCK_DGRAM, 0);
  if (udp < 0) fail("udp");
  set_option(udp, SOL_SOCKET, SO_BROADCAST, 1);
  set_option(udp, SOL_SOCKET, SO_RCVBUF, 100000);
  place(udp, 40);
  int tcp = socket(AF_INET6, SOCK_STREAM, 0);
  if (tcp < 0) fail("tcp6");
  set_option(tcp, SOL_SOCKET, SO_REUSEADDR, 1);
  set_option(tcp, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  place(tcp, 41);
  place(socket(AF_UNIX, SOCK_DGRAM, 0), 42);
  place(epoll_create1(0), 43);
  struct epoll_event watch = {.events = EPOLLIN, .data.u64 = 40};
  if (epoll_ctl(43, EPOLL_CTL_ADD, 40, &watch)) fail("epoll_ctl");
  place(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), 44);
  // Taken by sigwait, never delivered: no wake-up can be lost between two waits.
  sigset_t usr1 = block_signal(SIGUSR1);
  print_options();
  printf("ready\n");
  fflush(stdout);
  for (int signal; sigwait(&usr1, &signal) == 0;) {
    print_options();
    for (int fd = 40; fd <= 44; fd++) if (fd != 43) print_kind(fd);
    use_udp();
    use_unix();
    use_tcp();
    printf("done\n");
    fflush(stdout);
  }
  return 1;
}
