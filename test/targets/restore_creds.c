// A daemon that drops root, as servers do, and keeps one capability: groups 100 and 200, gids
// 1001/1002/1003 (real/effective/saved), uids 2001/2002/2003, CAP_NET_BIND_SERVICE permitted,
// effective, inheritable and ambient, CAP_SYS_ADMIN dropped from the bounding set, securebits
// SECBIT_KEEP_CAPS and no_new_privs. Its leader is named "credsleader"; a second thread named
// "credsworker" also moved its file-system uid to its real uid, 2001 (per thread, as Samba does).
// Prints: ready, then "tick <n> <euid>" every 100 ms from the worker.
#define _GNU_SOURCE
#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CAP_BIT(cap) (1u << (cap))

static volatile int started;

static void *worker(void *arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "credsworker");
  syscall(SYS_setfsuid, 2001);
  started = 1;
  for (long n = 1;; n++) {
    printf("tick %ld %d\n", n, (int)geteuid());
    fflush(stdout);
    usleep(100 * 1000);
  }
  return NULL;
}

int main(void) {
  gid_t groups[] = {100, 200};
  if (setgroups(2, groups)) { perror("setgroups"); return 1; }
  if (prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0)) { perror("PR_CAPBSET_DROP"); return 1; }
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)) { perror("PR_SET_KEEPCAPS"); return 1; }
  if (setresgid(1001, 1002, 1003)) { perror("setresgid"); return 1; }
  if (setresuid(2001, 2002, 2003)) { perror("setresuid"); return 1; }
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {{CAP_BIT(CAP_NET_BIND_SERVICE), CAP_BIT(CAP_NET_BIND_SERVICE), CAP_BIT(CAP_NET_BIND_SERVICE)}, {0, 0, 0}};
  if (syscall(SYS_capset, &header, data)) { perror("capset"); return 1; }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0)) { perror("PR_CAP_AMBIENT_RAISE"); return 1; }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) { perror("PR_SET_NO_NEW_PRIVS"); return 1; }
  prctl(PR_SET_NAME, "credsleader", 0, 0, 0);
  pthread_t thread;
  if (pthread_create(&thread, NULL, worker, NULL)) { perror("pthread_create"); return 1; }
  while (!started) usleep(1000);
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
