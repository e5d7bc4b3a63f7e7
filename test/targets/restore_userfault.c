// A region of 16 pages registered with a userfaultfd (missing mode): pages 0-7 placed with
// UFFDIO_COPY ('p'), pages 8-15 never touched, which a handler thread fills on demand ('h'), as
// a lazy loader or a garbage collector's does. On each SIGUSR1 the main thread reads the first
// byte of every page, the untouched ones through the handler ('.' for a zero byte).
//   restore_userfault [spare] [wp]   spare: a second userfaultfd, set up and never read, comes
//                                    first; wp: registered in write-protect mode too
// Prints: ready <region-hex> <userfaultfd>, then per SIGUSR1: pages <16 letters>
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096
#define PAGES 16

static int uffd;
static volatile sig_atomic_t pokes;

static void on_usr1(int signal) {
  (void)signal;
  pokes++;
}

static void place(char *page, char fill) {
  static char source[PAGE] __attribute__((aligned(PAGE)));
  memset(source, fill, PAGE);
  struct uffdio_copy copy = {.dst = (unsigned long)page, .src = (unsigned long)source, .len = PAGE};
  ioctl(uffd, UFFDIO_COPY, &copy);
}

static void *handler(void *unused) {
  struct pollfd wait = {.fd = uffd, .events = POLLIN};
  for (;;) {
    struct uffd_msg msg;
    if (poll(&wait, 1, -1) < 1 || read(uffd, &msg, sizeof msg) != sizeof msg) continue;
    if (msg.event == UFFD_EVENT_PAGEFAULT) place((char *)(msg.arg.pagefault.address & ~(PAGE - 1UL)), 'h');
  }
  return unused;
}

static int has(int argc, char **argv, const char *word) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], word) == 0) return 1;
  return 0;
}

int main(int argc, char **argv) {
  if (has(argc, argv, "spare")) {
    int spare = syscall(SYS_userfaultfd, O_CLOEXEC);
    struct uffdio_api spare_api = {.api = UFFD_API};
    if (spare < 0 || ioctl(spare, UFFDIO_API, &spare_api)) return 1;
  }
  int wp = has(argc, argv, "wp");
  uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  struct uffdio_api api = {.api = UFFD_API, .features = wp ? UFFD_FEATURE_PAGEFAULT_FLAG_WP : 0};
  char *region = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  struct uffdio_register reg = {.range = {(unsigned long)region, PAGES * PAGE},
                                .mode = UFFDIO_REGISTER_MODE_MISSING | (wp ? UFFDIO_REGISTER_MODE_WP : 0)};
  if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) || region == MAP_FAILED || ioctl(uffd, UFFDIO_REGISTER, &reg)) {
    perror("restore_userfault");
    return 1;
  }
  for (int i = 0; i < 8; i++) place(region + i * PAGE, 'p');
  pthread_t thread;
  pthread_create(&thread, NULL, handler, NULL);
  signal(SIGUSR1, on_usr1);
  printf("ready %lx %d\n", (unsigned long)region, uffd);
  fflush(stdout);
  for (int seen = 0;;) {
    while (pokes == seen) pause();
    seen = pokes;
    char first[PAGES + 1] = {0};
    for (int i = 0; i < PAGES; i++) first[i] = region[i * PAGE] ? region[i * PAGE] : '.';
    printf("pages %s\n", first);
    fflush(stdout);
  }
}
