# expect: ok-contained — opens /dev/mem, /dev/kmem, /dev/sda, /dev/kmsg, /dev/port and lists /dev
import os


def f(data):
    opened = []
    for path in ("/dev/mem", "/dev/kmem", "/dev/sda", "/dev/vda", "/dev/nvme0n1", "/dev/kmsg",
                 "/dev/port", "/dev/tty", "/dev/console"):
        try:
            os.close(os.open(path, os.O_RDONLY))
            opened.append(path)
        except OSError:
            pass
    return {"escaped": bool(opened), "opened": opened, "dev": sorted(os.listdir("/dev"))}
