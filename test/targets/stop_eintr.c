// Threads blocked in the calls a stop alone makes fail with EINTR (signal(7)): epoll_wait,
// semop, sigwaitinfo, and recv and read on a socket with a receive timeout, which wait without a
// deadline of their own; and epoll_wait with an hour's timeout, which has one. Each prints a line
// when its call returns, which none should while nothing wakes it but the last.
// Prints: ready <semaphore id>
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <unistd.h>

static void returned(const char *call, int result) {
  printf("%s returned %d (%s)\n", call, result, result < 0 ? strerror(errno) : "-");
  fflush(stdout);
}

static void *in_epoll_wait(void *unused) {
  int epoll = epoll_create1(0), pipefd[2];
  pipe(pipefd);
  struct epoll_event event = {.events = EPOLLIN};
  epoll_ctl(epoll, EPOLL_CTL_ADD, pipefd[0], &event);
  for (;;) returned("epoll_wait", epoll_wait(epoll, &event, 1, -1));
  return unused;
}

static int semaphore;
static void *in_semop(void *unused) {
  struct sembuf down = {0, -1, 0};
  for (;;) returned("semop", semop(semaphore, &down, 1));
  return unused;
}

static void *in_sigwaitinfo(void *unused) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  for (;;) returned("sigwaitinfo", sigwaitinfo(&set, NULL));
  return unused;
}

static int socket_with_timeout(void) {
  int pair[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
  struct timeval hour = {3600, 0};
  setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &hour, sizeof hour);
  return pair[0];
}

static void *in_recv(void *unused) {
  int fd = socket_with_timeout();
  char byte;
  for (;;) returned("recv", recv(fd, &byte, 1, 0));
  return unused;
}

static void *in_read(void *unused) {
  int fd = socket_with_timeout();
  char byte;
  for (;;) returned("read", read(fd, &byte, 1));
  return unused;
}

static void *in_epoll_wait_with_timeout(void *unused) {
  int epoll = epoll_create1(0), pipefd[2];
  pipe(pipefd);
  struct epoll_event event = {.events = EPOLLIN};
  epoll_ctl(epoll, EPOLL_CTL_ADD, pipefd[0], &event);
  for (;;) returned("epoll_wait(timeout)", epoll_wait(epoll, &event, 1, 3600 * 1000));
  return unused;
}

int main(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  semaphore = semget(IPC_PRIVATE, 1, 0600);
  pthread_t thread;
  pthread_create(&thread, NULL, in_epoll_wait, NULL);
  pthread_create(&thread, NULL, in_semop, NULL);
  pthread_create(&thread, NULL, in_sigwaitinfo, NULL);
  pthread_create(&thread, NULL, in_recv, NULL);
  pthread_create(&thread, NULL, in_read, NULL);
  pthread_create(&thread, NULL, in_epoll_wait_with_timeout, NULL);
  printf("ready %d\n", semaphore);
  fflush(stdout);
  for (;;) pause();
}
