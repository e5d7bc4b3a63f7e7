// A daemon that drops root, as servers do, and keeps one capability: groups 100 and 200, gids
// 1001/1002/1003 (real/effective/saved), uids 2001/2002/2003, CAP_NET_BIND_SERVICE permitted,
// effective, inheritable and ambient, CAP_NET_RAW inheritable but dropped from the bounding set
// as CAP_SYS_ADMIN is, securebits SECBIT_KEEP_CAPS and SECBIT_NO_CAP_AMBIENT_RAISE, no_new_privs,
// and a TCP listener on 127.0.0.1 made after the drop. Its leader is named "credsleader"; a second
// thread named "credsworker" also moved its file-system uid to its real uid, 2001 (per thread, as
// Samba does). Prints: ready <port>, then "tick <n> <euid>" every 100 ms from the worker.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <grp.h>
#include <linux/securebits.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CAP_BIT(cap) (1u << (cap))

static volatile int started;

static int capset3(unsigned effective, unsigned permitted, unsigned inheritable) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {{effective, permitted, inheritable}, {0, 0, 0}};
  return (int)syscall(SYS_capset, &header, data);
}

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
  // CAP_SETPCAP kept for the steps that need it, dropped last.
  unsigned kept = CAP_BIT(CAP_NET_BIND_SERVICE), inheritable = kept | CAP_BIT(CAP_NET_RAW);
  if (capset3(kept | CAP_BIT(CAP_SETPCAP), kept | CAP_BIT(CAP_SETPCAP), inheritable)) { perror("capset"); return 1; }
  // CAP_NET_RAW stays inheritable outside the bounding set, which a restore must set in that order.
  if (prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0)) { perror("PR_CAPBSET_DROP"); return 1; }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0)) { perror("PR_CAP_AMBIENT_RAISE"); return 1; }
  // Raising ambient capabilities is forbidden from here on: a restore must raise them before.
  if (prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_NO_CAP_AMBIENT_RAISE, 0, 0, 0)) { perror("PR_SET_SECUREBITS"); return 1; }
  if (capset3(kept, kept, inheritable)) { perror("capset"); return 1; }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) { perror("PR_SET_NO_NEW_PRIVS"); return 1; }
  // A listener made as the dropped user: its owner (/proc/net/tcp's uid) is 2002.
  int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t length = sizeof address;
  if (bind(listener, (struct sockaddr *) &address, sizeof address) || listen(listener, 4) ||
      getsockname(listener, (struct sockaddr *) &address, &length)) { perror("listener"); return 1; }
  prctl(PR_SET_NAME, "credsleader", 0, 0, 0);
  pthread_t thread;
  if (pthread_create(&thread, NULL, worker, NULL)) { perror("pthread_create"); return 1; }
  while (!started) usleep(1000);
  printf("ready %d\n", ntohs(address.sin_port));
  fflush(stdout);
  for (;;) pause();
}
