# expect: ok-bytes — returns a pickle: allowed as opaque bytes, never unpickled by the host
import pickle


class Payload:
    def __reduce__(self):
        return (print, ("unpickled on the host!",))


def f(data):
    return pickle.dumps(Payload())
