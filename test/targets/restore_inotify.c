// A file watcher, as a dev server has one: an inotify instance at fd 50 (non-blocking, in an
// epoll instance at fd 51) watching <dir> (wd 1, IN_CREATE), <dir>/sub2 (wd 3, IN_CREATE) and
// <dir>/sub3 (wd 4, IN_CREATE | IN_DELETE_SELF); wd 2 was <dir>/sub1's, removed again.
// Prints: ready, then one line per event: event <wd> <mask hex> <name or ->
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

static void fail(const char *what) {
  perror(what);
  _exit(1);
}

static int watch(int fd, const char *dir, const char *sub, unsigned mask) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s%s%s", dir, sub ? "/" : "", sub ? sub : "");
  if (sub && mkdir(path, 0755)) fail("mkdir");
  int wd = inotify_add_watch(fd, path, mask);
  if (wd < 0) fail("inotify_add_watch");
  return wd;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0 || dup2(fd, 50) != 50) fail("inotify");
  close(fd);
  watch(50, argv[1], NULL, IN_CREATE);
  inotify_rm_watch(50, watch(50, argv[1], "sub1", IN_CREATE));
  watch(50, argv[1], "sub2", IN_CREATE);
  watch(50, argv[1], "sub3", IN_CREATE | IN_DELETE_SELF);
  char buf[4096] __attribute__((aligned(8)));
  while (read(50, buf, sizeof buf) > 0) {} // the IN_IGNORED of sub1's watch
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0 || dup2(ep, 51) != 51) fail("epoll");
  close(ep);
  struct epoll_event in = {.events = EPOLLIN, .data.fd = 50};
  if (epoll_ctl(51, EPOLL_CTL_ADD, 50, &in)) fail("epoll_ctl");
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    struct epoll_event ready;
    if (epoll_wait(51, &ready, 1, -1) != 1) continue;
    ssize_t got;
    while ((got = read(50, buf, sizeof buf)) > 0) {
      for (char *p = buf; p < buf + got;) {
        struct inotify_event *e = (struct inotify_event *) p;
        printf("event %d %x %s\n", e->wd, e->mask, e->len ? e->name : "-");
        p += sizeof *e + e->len;
      }
    }
    fflush(stdout);
  }
}
