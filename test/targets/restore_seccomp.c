// Threads in every seccomp state: a thread in strict mode (made before any filter, so it can
// be), the main thread with two filters (the second installed with SECCOMP_FILTER_FLAG_LOG) and a
// worker that inherits those and adds its own. Each filter fails one call with its own errno, so
// every thread shows which filters judge it: uname (EOPNOTSUPP), getpriority (ENOMSG),
// sched_yield (E2BIG, the worker's own).
// Every 100 ms the main thread prints "main <n> <uname> <getpriority> <sched_yield>" (each call's
// result, -errno on failure) and wakes the others through pipes: the worker prints
// "worker <n> ..." the same way, the strict thread "strict <n>" (with write(2) alone).
// SIGUSR1: the strict thread calls getpid, which strict mode answers by killing it.
// Prints: ready
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static int to_worker[2], to_strict[2];
static volatile sig_atomic_t kill_strict;

static void on_usr1(int sig) {
  (void)sig;
  kill_strict = 1;
}

/** Installs a filter failing syscall nr with errno (flags: seccomp(2) filter flags). */
static void deny(int nr, int err, unsigned flags) {
  struct sock_filter filter[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | err),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog program = {.len = sizeof filter / sizeof filter[0], .filter = filter};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &program)) {
    perror("seccomp");
    _exit(1);
  }
}

static long result(long r) { return r < 0 ? -errno : r; }

static void report(const char *who, long n) {
  struct utsname u;
  long name = result(syscall(SYS_uname, &u));
  long priority = result(syscall(SYS_getpriority, PRIO_PROCESS, 0));
  long yield = result(syscall(SYS_sched_yield));
  printf("%s %ld %ld %ld %ld\n", who, n, name, priority, yield);
  fflush(stdout);
}

static void *strict_thread(void *arg) {
  (void)arg;
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT)) {
    perror("strict");
    _exit(1);
  }
  // From here on: read, write, _exit and sigreturn only.
  char line[32] = "strict ";
  for (long n = 0;; n++) {
    char c;
    if (read(to_strict[0], &c, 1) != 1) syscall(SYS_exit, 1);
    if (c == 'x') syscall(SYS_getpid);
    char digits[20];
    int len = 0;
    for (long v = n; len == 0 || v > 0; v /= 10) digits[len++] = (char)('0' + v % 10);
    int at = 7;
    while (len > 0) line[at++] = digits[--len];
    line[at++] = '\n';
    write(1, line, at);
  }
}

static void *worker(void *arg) {
  (void)arg;
  deny(SYS_sched_yield, E2BIG, 0);
  for (long n = 0;; n++) {
    char c;
    if (read(to_worker[0], &c, 1) != 1) return NULL;
    report("worker", n);
  }
}

int main(void) {
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, NULL); // the threads keep it blocked
  if (pipe(to_worker) || pipe(to_strict) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return 1;
  pthread_t strict, other;
  pthread_create(&strict, NULL, strict_thread, NULL);
  usleep(50 * 1000); // strict mode set before the filters
  deny(SYS_uname, EOPNOTSUPP, 0);
  deny(SYS_getpriority, ENOMSG, SECCOMP_FILTER_FLAG_LOG);
  pthread_create(&other, NULL, worker, NULL);
  signal(SIGUSR1, on_usr1);
  pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
  printf("ready\n");
  fflush(stdout);
  for (long n = 0;; n++) {
    report("main", n);
    write(to_worker[1], "w", 1);
    write(to_strict[1], kill_strict ? "x" : "s", 1);
    struct timespec tick = {0, 100 * 1000 * 1000};
    nanosleep(&tick, NULL);
  }
}
