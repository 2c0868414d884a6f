/* lk: fcntl and flock record locks from the shell, for the kernel guest's lock tests
 * (tests/p9/test_server_kernel_locks.py); busybox has no such tool. Built static on the host.
 *
 *   lk FILE set|wait|get r|w|u START LEN [HELD RELEASE]   F_SETLK, F_SETLKW or F_GETLK
 *   lk FILE flock [HELD RELEASE]                          flock(LOCK_EX | LOCK_NB)
 *
 * Prints the errno's name when a lock is refused (exit 1), "TYPE START LEN PID" or "u" for get.
 * With HELD and RELEASE: once the lock is taken, creates HELD and waits for RELEASE to exist. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static int hold(int argc, char **argv, int at) {
    if (argc <= at + 1) return 0;
    int fd = open(argv[at], O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) close(fd);
    while (access(argv[at + 1], F_OK) != 0) usleep(100000);
    return 0;
}

static int refused(int err) {
    puts(err == EAGAIN ? "EAGAIN" : err == EACCES ? "EACCES" : strerror(err));
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int fd = open(argv[1], O_RDWR | O_CREAT, 0644);
    if (fd < 0) { perror(argv[1]); return 2; }
    if (strcmp(argv[2], "flock") == 0) {
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) return refused(errno);
        return hold(argc, argv, 3);
    }
    if (argc < 6) return 2;
    struct flock lock = {0};
    lock.l_type = argv[3][0] == 'r' ? F_RDLCK : argv[3][0] == 'w' ? F_WRLCK : F_UNLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = atoll(argv[4]);
    lock.l_len = atoll(argv[5]);
    if (strcmp(argv[2], "get") == 0) {
        if (fcntl(fd, F_GETLK, &lock) != 0) return refused(errno);
        if (lock.l_type == F_UNLCK) puts("u");
        else printf("%c %lld %lld %d\n", lock.l_type == F_RDLCK ? 'r' : 'w', (long long)lock.l_start,
                    (long long)lock.l_len, (int)lock.l_pid);
        return 0;
    }
    if (fcntl(fd, strcmp(argv[2], "wait") == 0 ? F_SETLKW : F_SETLK, &lock) != 0) return refused(errno);
    return hold(argc, argv, 6);
}
