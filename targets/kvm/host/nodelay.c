/*
 * Preloaded into Bochs (LD_PRELOAD) by the kvm: target: sets TCP_NODELAY on the socket of the
 * emulated serial port (mode=socket-server) when Bochs accepts our connection.
 *
 * Why: Bochs sends the guest's output a byte at a time as the emulated UART shifts it out. With
 * Nagle's algorithm on, every byte after the first waits for the ACK of the one before, and the
 * receiving kernel delays that ACK (40 ms on Linux): every answer of the agent cost at least
 * 40 ms, whatever its size (README, "Numbers": 50 ms round trips became 10-20 ms).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	static int (*real_accept)(int, struct sockaddr *, socklen_t *);
	if (!real_accept)
		real_accept = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
	int c = real_accept(fd, addr, len);
	if (c >= 0) {
		int one = 1;
		/* a socket that is not TCP refuses it: nothing to do then */
		(void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return c;
}
