// Sets its umask to 027 and waits for a file (argv[1]) to appear; then creates argv[2] with mode
// 0666 and reports the mode the umask left it.
// Prints: ready
// then:   mode <octal mode of argv[2]>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: restore_umask <file-to-wait-for> <file-to-create>\n");
    return 2;
  }
  umask(027);
  printf("ready\n");
  fflush(stdout);
  struct timespec nap = {0, 5 * 1000 * 1000};
  while (access(argv[1], F_OK) != 0) nanosleep(&nap, NULL);
  int fd = open(argv[2], O_CREAT | O_EXCL | O_WRONLY, 0666);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    perror("restore_umask: create");
    return 1;
  }
  printf("mode %o\n", st.st_mode & 07777);
  fflush(stdout);
  close(fd);
  return 0;
}
