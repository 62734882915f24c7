"""Silent flood: open N TCP connections from SRC to HOST:PORT, send nothing, hold them.

    flood.py SRC HOST PORT N HOLD_S

Prints `opened N`, then after HOLD_S seconds `closed_by_peer M` (connections the other side
had closed by then) and exits, closing the rest."""
import resource
import select
import socket
import sys
import time

src, host, port, n, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
n = min(n, hard - 200)
socks = []
for _ in range(n):
    s = socket.socket()
    s.setblocking(False)
    s.bind((src, 0))
    try:
        s.connect((host, port))
    except BlockingIOError:
        pass
    socks.append(s)
print(f"opened {len(socks)}", flush=True)
deadline = time.time() + hold
closed = set()
poll = select.poll()
by_fd = {s.fileno(): s for s in socks}
for fd in by_fd:
    poll.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
while time.time() < deadline and len(closed) < len(socks):
    for fd, _ in poll.poll(200):
        try:
            gone = by_fd[fd].recv(1) == b""
        except BlockingIOError:
            gone = False
        except OSError:
            gone = True
        if gone:
            closed.add(fd)
            poll.unregister(fd)
print(f"closed_by_peer {len(closed)}", flush=True)
