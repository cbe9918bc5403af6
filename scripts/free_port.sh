# Sourced by the load and scale-out scripts: free_port prints a free TCP port on 127.0.0.1 for a
# server to listen on, picked at random below the kernel's ephemeral range (a bind(0) port could
# be handed to an outgoing connection before the server binds it) and checked by binding it.
free_port() {
  python3 -c '
import random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(1000):
    p = random.randrange(10000, max(lo, 11000))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()
else:
    raise SystemExit("free_port: no bindable port")'
}
