// Netlink sockets, at fixed numbers: 40 NETLINK_ROUTE (raw), bound to RTMGRP_LINK (group 1) and a
// member of RTNLGRP_IPV4_IFADDR (5) and RTNLGRP_NEXTHOP (32) too; 41 NETLINK_KOBJECT_UEVENT
// (datagram), in no group.
// Prints: ready
// On SIGUSR1: "groups <the groups of 40, ascending, comma-separated>", "links <the links an
// RTM_GETLINK dump over 40 lists>", "done".
#define _GNU_SOURCE
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "targets.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static void print_groups(void) {
  unsigned int bitmap[32] = {0};
  socklen_t length = sizeof bitmap;
  if (getsockopt(40, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, bitmap, &length)) { perror("getsockopt"); _exit(1); }
  printf("groups ");
  const char *comma = "";
  for (unsigned int bit = 0; bit < length * 8 && bit < sizeof bitmap * 8; bit++) {
    if (bitmap[bit / 32] & (1u << (bit % 32))) {
      printf("%s%u", comma, bit + 1);
      comma = ",";
    }
  }
  printf("\n");
}

static void print_links(void) {
  struct { struct nlmsghdr header; struct ifinfomsg info; } request = {
    .header = {.nlmsg_len = sizeof request, .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1},
    .info = {.ifi_family = AF_UNSPEC},
  };
  if (send(40, &request, sizeof request, 0) < 0) { perror("send"); _exit(1); }
  static char reply[65536];
  int links = 0;
  for (;;) {
    ssize_t got = recv(40, reply, sizeof reply, 0);
    if (got < 0) { perror("recv"); _exit(1); }
    for (struct nlmsghdr *m = (struct nlmsghdr *) reply; NLMSG_OK(m, (size_t) got); m = NLMSG_NEXT(m, got)) {
      // Events of the groups may arrive between the dump's parts: only the dump's replies count.
      if (m->nlmsg_seq != 1) continue;
      if (m->nlmsg_type == NLMSG_DONE) { printf("links %d\n", links); return; }
      if (m->nlmsg_type == RTM_NEWLINK) links++;
    }
  }
}

int main(void) {
  int route = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  struct sockaddr_nl address = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};
  if (route < 0 || bind(route, (struct sockaddr *) &address, sizeof address)) { perror("bind"); return 1; }
  for (int group = RTNLGRP_IPV4_IFADDR; group <= 32; group += 32 - RTNLGRP_IPV4_IFADDR) {
    if (setsockopt(route, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group)) { perror("membership"); return 1; }
  }
  place(route, 40);
  place(socket(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT), 41);
  // Taken by sigwait, never delivered: no wake-up can be lost between two waits.
  sigset_t usr1 = block_signal(SIGUSR1);
  printf("ready\n");
  fflush(stdout);
  for (int signal; sigwait(&usr1, &signal) == 0;) {
    print_groups();
    print_links();
    printf("done\n");
    fflush(stdout);
  }
  return 1;
}
