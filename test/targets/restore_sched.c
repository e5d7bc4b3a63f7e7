// Threads scheduled each their own way: "schedmain" (the leader) at nice 5 on the first CPU with
// I/O priority best-effort 6; "schedidle" as SCHED_IDLE on the last CPU, I/O class idle, timer
// slack 123456 ns; "schedrr" as SCHED_RR priority 3. The process: oom_score_adj 500, personality
// ADDR_NO_RANDOMIZE.
// Prints: ready, then every 100 ms: tick <n>
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_VALUE(class, level) (((class) << 13) | (level))

static pthread_barrier_t ready;

static void fail(const char *what) {
  perror(what);
  _exit(1);
}

static void on_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set)) fail("sched_setaffinity");
}

static void *idle_thread(void *arg) {
  (void)arg;
  prctl(PR_SET_NAME, "schedidle");
  struct sched_param none = {0};
  if (sched_setscheduler(0, SCHED_IDLE, &none)) fail("SCHED_IDLE");
  on_cpu(sysconf(_SC_NPROCESSORS_ONLN) - 1);
  if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_VALUE(3, 0))) fail("ioprio idle");
  if (prctl(PR_SET_TIMERSLACK, 123456)) fail("timer slack");
  pthread_barrier_wait(&ready);
  for (;;) pause();
}

static void *rr_thread(void *arg) {
  (void)arg;
  prctl(PR_SET_NAME, "schedrr");
  struct sched_param rt = {.sched_priority = 3};
  if (sched_setscheduler(0, SCHED_RR, &rt)) fail("SCHED_RR");
  pthread_barrier_wait(&ready);
  for (;;) pause();
}

int main(void) {
  prctl(PR_SET_NAME, "schedmain");
  if (personality(ADDR_NO_RANDOMIZE) < 0) fail("personality");
  FILE *oom = fopen("/proc/self/oom_score_adj", "w");
  if (!oom || fprintf(oom, "500\n") < 0 || fclose(oom)) fail("oom_score_adj");
  pthread_barrier_init(&ready, NULL, 3);
  pthread_t idle, rr;
  pthread_create(&idle, NULL, idle_thread, NULL);
  pthread_create(&rr, NULL, rr_thread, NULL);
  // After the threads are made: each thread's own.
  if (setpriority(PRIO_PROCESS, 0, 5)) fail("nice");
  on_cpu(0);
  if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_VALUE(2, 6))) fail("ioprio");
  pthread_barrier_wait(&ready);
  printf("ready\n");
  fflush(stdout);
  struct timespec tick = {0, 100 * 1000 * 1000};
  for (long n = 1;; n++) {
    nanosleep(&tick, NULL);
    printf("tick %ld\n", n);
    fflush(stdout);
  }
}
