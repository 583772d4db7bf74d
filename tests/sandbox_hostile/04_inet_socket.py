# expect: ok-contained — opens AF_INET/AF_INET6/AF_PACKET/netlink sockets and connects to 127.0.0.1
import socket


def f(data):
    opened = []
    for family, kind in ((socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET6, socket.SOCK_STREAM),
                         (socket.AF_INET, socket.SOCK_DGRAM), (socket.AF_PACKET, socket.SOCK_RAW),
                         (socket.AF_NETLINK, socket.SOCK_RAW)):
        try:
            s = socket.socket(family, kind)
            opened.append(str(family))
            s.close()
        except OSError:
            pass
    connected = False
    try:
        socket.create_connection(("127.0.0.1", 22), timeout=1).close()
        connected = True
    except OSError:
        pass
    return {"escaped": bool(opened) or connected, "opened": opened}
