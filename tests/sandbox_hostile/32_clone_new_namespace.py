# expect: ok-contained — clone() with new namespaces and clone3, bypassing os.fork
import ctypes

SIGCHLD = 17
CLONE_NEWUSER = 0x10000000


def f(data):
    libc = ctypes.CDLL(None, use_errno=True)
    plain = libc.syscall(56, SIGCHLD, 0, 0, 0, 0)
    if plain == 0:
        libc._exit(0)
    userns = libc.syscall(56, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)
    if userns == 0:
        libc._exit(0)
    clone3 = libc.syscall(435, 0, 0)
    errno3 = ctypes.get_errno()
    return {"escaped": plain > 0 or userns > 0, "got": [plain, userns, clone3, errno3]}
