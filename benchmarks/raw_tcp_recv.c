/* Raw loopback TCP ceiling for the benchmarks: connect to 127.0.0.1:PORT and receive SIZE bytes
 * into one pre-faulted buffer, the best a receiver can do with plain sockets (non-blocking
 * recv + poll, as uftpcore's compiled receiver).  Prints the seconds taken.
 * Built at benchmark time: cc -O2 -o raw_tcp_recv raw_tcp_recv.c */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: raw_tcp_recv PORT SIZE\n"); return 2; }
    int port = atoi(argv[1]);
    long long size = atoll(argv[2]);
    char *buf = malloc(size);
    if (!buf) { perror("malloc"); return 1; }
    memset(buf, 0, size);  /* fault the pages in before timing */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 1; }
    fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
    struct timespec t0, t1;
    long long got = 0;
    struct pollfd p = {s, POLLIN, 0};
    /* wait for the first byte before starting the clock */
    poll(&p, 1, 10000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (got < size) {
        ssize_t n = recv(s, buf + got, size - got, 0);
        if (n > 0) got += n;
        else if (n == 0) break;
        else if (errno == EAGAIN || errno == EWOULDBLOCK) poll(&p, 1, 10000);
        else if (errno != EINTR) { perror("recv"); return 1; }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (got != size) { fprintf(stderr, "short: %lld of %lld\n", got, size); return 1; }
    printf("%.6f\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
