// A process under a seccomp filter that kills it for any of the calls a snapshot injects:
// rt_sigaction (13), getitimer (36), sigaltstack (131), prctl (157).
// Prints: ready
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(void) {
  struct sock_filter filter[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 13, 4, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 36, 3, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 131, 2, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 157, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
  };
  struct sock_fprog program = {.len = sizeof filter / sizeof filter[0], .filter = filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program)) {
    perror("seccomp");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
