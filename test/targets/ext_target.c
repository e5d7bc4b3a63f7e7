// A process with everything the image extension records: threads with their own signal masks,
// handlers installed with SA_RESTART and a mask, an ignored signal, a regular file open at a known
// offset, a pipe, a private file mapping with a modified page, a mapping of a deleted file, a cwd
// of its own and an unaligned brk. The main thread blocks in read() on the pipe.
// Usage: ext_target <dir>   (becomes the cwd; files are created there)
// Prints: ready <usr1-handler> <usr2-handler> <brk> <deleted-inode> <map-address> <tid>:<fs_base>...
//   (hex but the inode and tids; one tid:fs_base per thread, the main thread first)
//   then: "handled USR1" for each SIGUSR1; SIGUSR2 writes a byte into the pipe, and the main
//   thread prints "read <byte>"; a read that fails prints "read error <errno>".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WORKERS 3
#define FILE_OFFSET 1234

static int pipe_fds[2];
static pthread_barrier_t started;
static struct { pid_t tid; unsigned long fs_base; } workers[WORKERS];

static void say(const char *text) {
  ssize_t ignored = write(1, text, strlen(text));
  (void)ignored;
}

static void on_usr1(int sig) {
  (void)sig;
  say("handled USR1\n");
}

static void on_usr2(int sig) {
  (void)sig;
  ssize_t ignored = write(pipe_fds[1], "x", 1);
  (void)ignored;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void *worker(void *arg) {
  long index = (long)arg;
  // Each worker blocks SIGUSR1 and SIGUSR2 (so they go to the main thread) and one more of its own.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  sigaddset(&mask, SIGUSR2);
  sigaddset(&mask, SIGRTMIN + (int)index);
  pthread_sigmask(SIG_BLOCK, &mask, NULL);
  workers[index].tid = (pid_t)syscall(SYS_gettid);
  workers[index].fs_base = (unsigned long)pthread_self();
  pthread_barrier_wait(&started);
  for (;;) pause();
  return NULL;
}

static void install(int sig, void (*handler)(int), int also_blocked) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, also_blocked);
  if (sigaction(sig, &sa, NULL) != 0) die("sigaction");
}

static int make_file(const char *name, size_t size, char fill) {
  int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die(name);
  char *bytes = malloc(size);
  memset(bytes, fill, size);
  if (write(fd, bytes, size) != (ssize_t)size) die("write");
  free(bytes);
  return fd;
}

int main(int argc, char **argv) {
  if (argc != 2 || chdir(argv[1]) != 0) die("usage: ext_target <dir>");
  if (pipe(pipe_fds) != 0) die("pipe");

  int data = make_file("data", 8192, 'd');
  if (lseek(data, FILE_OFFSET, SEEK_SET) != FILE_OFFSET) die("lseek");

  int mapped = make_file("mapped", 3 * 4096, 'm');
  char *map = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, mapped, 0);
  if (map == MAP_FAILED) die("mmap mapped");
  close(mapped);
  map[4096] = 'M'; // a private copy of the middle page

  int gone = make_file("gone", 4096, 'g');
  struct stat gone_stat;
  if (fstat(gone, &gone_stat) != 0) die("fstat");
  if (mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, gone, 0) == MAP_FAILED) die("mmap gone");
  close(gone);
  if (unlink("gone") != 0) die("unlink");

  install(SIGUSR1, on_usr1, SIGUSR2);
  install(SIGUSR2, on_usr2, SIGTERM);
  signal(SIGPIPE, SIG_IGN);
  sigset_t main_mask;
  sigemptyset(&main_mask);
  sigaddset(&main_mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &main_mask, NULL);

  pthread_barrier_init(&started, NULL, WORKERS + 1);
  for (long i = 0; i < WORKERS; i++) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, (void *)i) != 0) die("pthread_create");
  }
  pthread_barrier_wait(&started);

  // Nothing allocates from here on, so this stays the exact, unaligned break.
  if (sbrk(0x123) == (void *)-1) die("sbrk");
  unsigned long brk = (unsigned long)sbrk(0);

  char line[512];
  int n = snprintf(line, sizeof line, "ready %lx %lx %lx %lu %lx", (unsigned long)on_usr1, (unsigned long)on_usr2,
                   brk, (unsigned long)gone_stat.st_ino, (unsigned long)map);
  n += snprintf(line + n, sizeof line - n, " %d:%lx", getpid(), (unsigned long)pthread_self());
  for (int i = 0; i < WORKERS; i++) n += snprintf(line + n, sizeof line - n, " %d:%lx", workers[i].tid, workers[i].fs_base);
  snprintf(line + n, sizeof line - n, "\n");
  say(line);

  for (;;) {
    char byte;
    ssize_t got = read(pipe_fds[0], &byte, 1);
    if (got == 1) {
      char out[16];
      snprintf(out, sizeof out, "read %c\n", byte);
      say(out);
    } else {
      char out[32];
      snprintf(out, sizeof out, "read error %d\n", got < 0 ? errno : 0);
      say(out);
    }
  }
}
