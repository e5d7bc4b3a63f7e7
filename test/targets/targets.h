// What several test targets do alike. test/helpers/build.ts rebuilds every target when this
// file changes too.
#ifndef IMGFS_TEST_TARGETS_H
#define IMGFS_TEST_TARGETS_H

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

// Moves descriptor fd to the fixed number a test looks for; exits if fd is no descriptor.
static inline void place(int fd, int at) {
  if (fd < 0 || dup2(fd, at) != at) { perror("place"); _exit(1); }
  if (fd != at) close(fd);
}

// Blocks signal in the calling thread (and the threads it creates) and returns the set holding it,
// for sigwait: a signal taken by sigwait is never delivered, so no wake-up is lost between waits.
static inline sigset_t block_signal(int signal) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signal);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  return set;
}

#endif
