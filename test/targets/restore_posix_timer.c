// POSIX timers: a throw-away timer is created and deleted first, so that the kept ones do not
// have the ids a new process would get. Timer A (CLOCK_MONOTONIC, SIGEV_SIGNAL SIGRTMIN with
// sigev_value 1234) fires every 200 ms into the main thread; timer B (CLOCK_BOOTTIME, SIGEV_NONE)
// has 1000 s left and no interval; timer C (CLOCK_MONOTONIC, SIGEV_THREAD_ID SIGRTMIN+1) fires
// every 300 ms into a worker thread, whose handler tells it runs there by a thread-local flag.
// Once a file (argv[1]) appears, reports what timer_gettime says of its saved timer_t values.
// Prints: ids <a> <b> <c>
//         worker-tid <tid>
// then:   tick <count> <si_value> <si_timerid>              (every 200 ms)
//         worker <count>                                    (every 300 ms)
//         timer <id> <interval-ms> <value-s>                (one per timer, at the end)
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t ticks, last_value, last_timer, worker_ticks;
static volatile pid_t worker_tid;
static __thread int in_worker;

static void on_tick(int sig, siginfo_t *info, void *context) {
  (void)sig;
  (void)context;
  ticks++;
  last_value = info->si_value.sival_int;
  last_timer = info->si_timerid;
}

static void on_worker_tick(int sig) {
  (void)sig;
  if (in_worker) worker_ticks++;
}

static void *worker(void *arg) {
  (void)arg;
  in_worker = 1;
  sigset_t mine;
  sigemptyset(&mine);
  sigaddset(&mine, SIGRTMIN + 1);
  pthread_sigmask(SIG_UNBLOCK, &mine, NULL);
  worker_tid = (pid_t)syscall(SYS_gettid);
  for (;;) pause();
  return NULL;
}

static timer_t create(clockid_t clock, struct sigevent *event) {
  timer_t id;
  if (timer_create(clock, event, &id) != 0) {
    perror("timer_create");
    exit(1);
  }
  return id;
}

static void arm(timer_t id, long interval_ms, long value_ms) {
  struct itimerspec its = {{interval_ms / 1000, interval_ms % 1000 * 1000000}, {value_ms / 1000, value_ms % 1000 * 1000000}};
  timer_settime(id, 0, &its, NULL);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: restore_posix_timer <file-to-wait-for>\n");
    return 2;
  }
  struct sigaction tick = {.sa_sigaction = on_tick, .sa_flags = SA_SIGINFO | SA_RESTART};
  sigaction(SIGRTMIN, &tick, NULL);
  struct sigaction worker_tick = {.sa_handler = on_worker_tick, .sa_flags = SA_RESTART};
  sigaction(SIGRTMIN + 1, &worker_tick, NULL);
  sigset_t worker_only;
  sigemptyset(&worker_only);
  sigaddset(&worker_only, SIGRTMIN + 1);
  pthread_sigmask(SIG_BLOCK, &worker_only, NULL);
  pthread_t thread;
  pthread_create(&thread, NULL, worker, NULL);
  while (worker_tid == 0) usleep(1000);

  struct sigevent none = {.sigev_notify = SIGEV_NONE};
  timer_t throwaway = create(CLOCK_MONOTONIC, &none);
  struct sigevent signal_a = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN, .sigev_value.sival_int = 1234};
  timer_t a = create(CLOCK_MONOTONIC, &signal_a);
  timer_t b = create(CLOCK_BOOTTIME, &none);
  struct sigevent to_worker = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGRTMIN + 1};
  to_worker._sigev_un._tid = worker_tid; // sigev_notify_thread_id, which this glibc does not name
  timer_t c = create(CLOCK_MONOTONIC, &to_worker);
  timer_delete(throwaway);
  arm(b, 0, 1000 * 1000);
  arm(c, 300, 300);
  arm(a, 200, 200);
  printf("ids %ld %ld %ld\nworker-tid %d\n", (long)a, (long)b, (long)c, (int)worker_tid);
  fflush(stdout);

  int reported = 0, reported_worker = 0;
  while (access(argv[1], F_OK) != 0) {
    usleep(20 * 1000);
    if (ticks != reported) {
      reported = ticks;
      printf("tick %d %d %d\n", reported, (int)last_value, (int)last_timer);
      fflush(stdout);
    }
    if (worker_ticks != reported_worker) {
      reported_worker = worker_ticks;
      printf("worker %d\n", reported_worker);
      fflush(stdout);
    }
  }
  timer_t timers[] = {a, b, c};
  for (int i = 0; i < 3; i++) {
    struct itimerspec its;
    if (timer_gettime(timers[i], &its) != 0) {
      perror("timer_gettime");
      return 1;
    }
    printf("timer %ld %ld %ld\n", (long)timers[i], its.it_interval.tv_sec * 1000 + its.it_interval.tv_nsec / 1000000, (long)its.it_value.tv_sec);
  }
  fflush(stdout);
  return 0;
}
