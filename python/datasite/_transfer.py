"""Moving asset bytes: Python objects to files of a format, streamed uploads and checked downloads.

Uploads and downloads go through ``http.client`` in 1 MiB chunks, so their memory use does not
depend on the size of the file. An upload announces ``Expect: 100-continue``: the server refuses
(no permission, too large) before a single byte of the body is sent, and an answer that comes while
the body is still being sent stops the sending at once.

These connections go straight to the server (no proxy from the environment), like the JSON
requests to a server on this machine.
"""

import hashlib
import http.client
import io
import json
import os
import pathlib
import select
import socket
import ssl
import sys
import tempfile
import time
import urllib.parse

from . import errors
from ._http import _error_from_http, https_connection, route_path
from ._sidecar import SidecarError, sidecar_read_csv, sidecar_read_plain_csv, sidecar_write_csv

CHUNK_SIZE = 1 << 20
PROGRESS_THRESHOLD = 16 << 20
FORMATS = ("csv", "json", "npy", "raw")
_EXTENSIONS = {".csv": "csv", ".json": "json", ".npy": "npy"}
# How long an upload waits for "100 Continue" before it sends the body anyway (for a proxy that
# does not pass the interim answer on).
CONTINUE_WAIT_SECONDS = 5.0
# How long the server may take to answer once the whole body is sent (it checksums, fsyncs and
# profiles the file).
FINISH_TIMEOUT_SECONDS = 3600.0
_ERROR_BODY_LIMIT = 64 * 1024


def _pandas(imported_only=False):
    """The pandas module, or None when it is not installed. With ``imported_only``, None unless
    something imported it already (an object can only be a DataFrame then, and testing for one
    need not import pandas).
    """
    if imported_only:
        return sys.modules.get("pandas")
    try:
        import pandas
    except ImportError:  # pandas is optional
        return None
    return pandas


def _numpy(imported_only=False):
    """Like ``_pandas``, for numpy."""
    if imported_only:
        return sys.modules.get("numpy")
    try:
        import numpy
    except ImportError:  # numpy is optional
        return None
    return numpy


# Python objects -> payloads ----------------------------------------------------------------------


class Payload:
    """The bytes of one upload: a file on disk (owned or the user's) or bytes in memory, and for a
    DataFrame or Series the typed sidecar of its CSV (``meta``, a dict; else None)."""

    def __init__(self, fmt, path=None, content=None, owned=False, origin=None, meta=None):
        self.format = fmt
        self.meta = meta
        self.path = path
        self.content = content
        self.owned = owned
        self.origin = origin or ("file " + str(path) if path is not None else "bytes")
        self.size = os.path.getsize(path) if path is not None else len(content)

    def open(self):
        if self.path is not None:
            return open(self.path, "rb")
        return io.BytesIO(self.content)

    def cleanup(self):
        if self.owned and self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def kind_of(obj):
    """A short description of what an asset holds ("DataFrame", "ndarray", "file x.csv", ...)."""
    if obj is None:
        return "None"
    if isinstance(obj, (str, os.PathLike)):
        return "file " + os.fspath(obj)
    return type(obj).__name__


def format_of(obj):
    """The upload format an object will have ("csv", "json", "npy", "raw"); TypeError if none."""
    pd, np = _pandas(imported_only=True), _numpy(imported_only=True)
    if pd is not None and isinstance(obj, (pd.DataFrame, pd.Series)):
        return "csv"
    if np is not None and isinstance(obj, np.ndarray):
        return "npy"
    if isinstance(obj, (list, tuple, dict)):
        return "json"
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return "raw"
    if isinstance(obj, (str, os.PathLike)):
        return _EXTENSIONS.get(pathlib.Path(os.fspath(obj)).suffix.lower(), "raw")
    raise TypeError(
        "cannot upload a {}: an asset's data or mock must be a pandas DataFrame or Series, a "
        "numpy ndarray, a list or dict (JSON), bytes, or the path of a file (.csv, .json, .npy, "
        "anything else as raw bytes)".format(type(obj).__name__)
    )


def _temp_path(suffix):
    fd, path = tempfile.mkstemp(prefix="datasite-", suffix=suffix)
    os.close(fd)
    return path


def payload_of(obj):
    """A ``Payload`` for an asset's data or mock (see ``format_of`` for what is accepted).

    In-memory objects are written to a temporary file (deleted by ``cleanup``); a path is streamed
    from where it is.
    """
    fmt = format_of(obj)
    pd, np = _pandas(imported_only=True), _numpy(imported_only=True)
    if isinstance(obj, (str, os.PathLike)):
        path = os.fspath(obj)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                "no file at {!r}: a string given as data or mock is the path of a file to "
                "upload (pass bytes for raw content)".format(path)
            )
        return Payload(fmt, path=path, origin="file " + path)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return Payload("raw", content=bytes(obj), origin="bytes")
    path = _temp_path("." + fmt)
    meta = None
    try:
        if pd is not None and isinstance(obj, (pd.Series, pd.DataFrame)):
            try:
                meta = sidecar_write_csv(obj, path)
            except SidecarError as err:
                raise ValueError(
                    "cannot upload this {} exactly: {}".format(type(obj).__name__, err)
                ) from None
        elif np is not None and isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                raise ValueError(
                    "cannot upload a numpy array of dtype object: its Python objects would need "
                    "a pickle, and datasite never stores or sends pickles; use an array of "
                    "numbers, booleans, strings (dtype 'U' or 'S'), datetimes, or a structured "
                    "array of these, or a DataFrame"
                )
            array = obj
            if array.ndim > 1 and not array.flags.c_contiguous:
                array = np.ascontiguousarray(array)
            with open(path, "wb") as out:
                np.save(out, array, allow_pickle=False)
        else:
            try:
                with open(path, "w", encoding="utf-8") as out:
                    json.dump(obj, out, ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError) as err:
                raise ValueError(
                    "cannot write this {} as JSON: {}".format(type(obj).__name__, err)
                ) from None
    except BaseException:
        os.unlink(path)
        raise
    return Payload(fmt, path=path, owned=True, origin=type(obj).__name__, meta=meta)


# Files -> Python objects -------------------------------------------------------------------------


def load_file(path, fmt, meta=None):
    """The Python object for a downloaded file: a DataFrame or Series (csv, with pandas; exactly
    as uploaded when it has a sidecar ``meta``), an ndarray (npy, with numpy), the decoded JSON, or
    bytes (raw, and csv/npy without pandas/numpy).
    """
    if fmt == "csv":
        pd = _pandas()
        if pd is not None:
            if meta is not None:
                return read_csv_with_sidecar(path, meta)
            return sidecar_read_plain_csv(path)
    elif fmt == "npy":
        np = _numpy()
        if np is not None:
            return np.load(path, allow_pickle=False)
    elif fmt == "json":
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    with open(path, "rb") as f:
        return f.read()


# Progress ----------------------------------------------------------------------------------------


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional
        return None
    return tqdm


class Progress:
    """A progress bar on stderr (tqdm when importable, else one ``\\r``-updated line) for
    transfers over ``PROGRESS_THRESHOLD`` bytes; does nothing for smaller ones.
    """

    def __init__(self, total, label, stream=None, threshold=PROGRESS_THRESHOLD, interval=0.2):
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = total is not None and total > threshold
        self.done = 0
        self.interval = interval
        self.started = time.monotonic()
        self._last = 0.0
        self._bar = None
        if self.enabled:
            tqdm = _tqdm()
            if tqdm is not None:
                self._bar = tqdm(
                    total=total,
                    desc=label,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1000,
                    file=self.stream,
                )
            else:
                self._draw()

    def update(self, n):
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._draw(now)

    def line(self, now=None):
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.started, 1e-6)
        done_mb = self.done / 1e6
        total_mb = (self.total or 0) / 1e6
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return "{}: {:6.1f}% {:.1f}/{:.1f} MB {:.1f} MB/s".format(
            self.label, pct, done_mb, total_mb, done_mb / elapsed
        )

    def _draw(self, now=None):
        self._last = time.monotonic() if now is None else now
        self.stream.write("\r" + self.line(now))
        self.stream.flush()

    def close(self):
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
            return
        self._draw()
        self.stream.write("\n")
        self.stream.flush()
        self.enabled = False


# HTTP --------------------------------------------------------------------------------------------


def _connection(transport, timeout):
    parts = urllib.parse.urlsplit(transport.base_url)
    if parts.scheme == "https":
        # Checks the certificate against the name in the URL, "localhost" included.
        return https_connection(
            parts.hostname, parts.port, timeout=timeout, context=transport.ssl_context)
    host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
    return http.client.HTTPConnection(host, parts.port, timeout=timeout)


def _unreachable(transport, err):
    return errors.ServerConnectionError(
        None, "cannot reach the server at {}: {}".format(transport.base_url, err), None
    )


def _raise_for(resp):
    raw = resp.read(_ERROR_BODY_LIMIT)
    raise _error_from_http(resp.status, raw, resp.headers) from None


class _Replay(io.RawIOBase):
    """Reads ``head`` first, then the socket: what ``_read_interim_tls`` took of a final answer."""

    def __init__(self, sock, head):
        super().__init__()
        self._sock = sock
        self._head = head

    def readable(self):
        return True

    def readinto(self, buf):
        if self._head:
            n = min(len(buf), len(self._head))
            buf[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return self._sock.recv_into(buf)


class _ReplayingSocket:
    """A socket whose answer starts with bytes already read from it, for ``getresponse``."""

    def __init__(self, sock, head):
        self._sock = sock
        self._head = head

    def makefile(self, mode, *args, **kwargs):
        return io.BufferedReader(_Replay(self._sock, self._head))

    def __getattr__(self, name):
        return getattr(self._sock, name)


def _read_interim_tls(sock, timeout):
    """``_peek_interim`` for a TLS socket, which cannot be peeked at (``MSG_PEEK`` is refused, and
    ``select`` also wakes up for the TLS layer's own messages): reads the answer's head one byte at
    a time. Returns ``(kind, head)``: ``head`` holds what was read of a final answer.
    """
    old = sock.gettimeout()
    sock.settimeout(timeout)
    head = b""
    try:
        while b"\r\n\r\n" not in head:
            if len(head) >= 12 and not (head.startswith(b"HTTP/1.") and head[9:12] == b"100"):
                return "final", head
            try:
                byte = sock.recv(1)
            except (socket.timeout, ssl.SSLWantReadError):
                # Part of an answer is final: getresponse reads the rest (and skips a 100).
                return ("final" if head else "none"), head
            except OSError:
                return "final", head
            if not byte:
                return "final", head
            head += byte
        return "continue", b""
    finally:
        sock.settimeout(old)


def _peek_interim(sock, timeout):
    """Waits up to ``timeout`` for the server's first answer. Consumes a ``100 Continue`` and
    returns "continue"; returns "final" when a final answer is waiting, "none" when nothing came.
    Not for TLS sockets: see ``_read_interim_tls``.
    """
    deadline = time.monotonic() + timeout
    readable, _, _ = select.select([sock], [], [], timeout)
    if not readable:
        return "none"
    while True:
        try:
            data = sock.recv(4096, socket.MSG_PEEK)
        except OSError:
            return "final"
        if not data:
            return "final"  # closed: getresponse() reports it
        if len(data) >= 12 and not (data.startswith(b"HTTP/1.") and data[9:12] == b"100"):
            return "final"
        end = data.find(b"\r\n\r\n")
        if end >= 0 and len(data) >= 12:
            sock.recv(end + 4)  # exactly the interim answer
            return "continue"
        if time.monotonic() > deadline:
            return "final"
        time.sleep(0.01)  # part of the interim answer is here; the rest is on its way


def _answer_waiting(sock):
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def upload(transport, payload, label="Uploading", progress_stream=None, route="blobs_upload",
           query=None):
    """Streams ``payload`` to ``POST /api/v1/blobs?format=F`` (or to ``route`` with ``query``);
    returns the answer's JSON.

    Raises the server's error (``PayloadTooLargeError``, ``InvalidArgumentError``, ...) also when
    it comes before the whole body was sent.
    """
    if query is None and route == "blobs_upload":
        query = {"format": payload.format}
    _, path = route_path(route, query=query)
    conn = _connection(transport, transport.timeout)
    progress = None
    try:
        try:
            conn.putrequest("POST", path, skip_accept_encoding=True)
            conn.putheader("Accept", "application/json")
            conn.putheader("Content-Type", "application/octet-stream")
            conn.putheader("Content-Length", str(payload.size))
            conn.putheader("Expect", "100-continue")
            if transport.token:
                conn.putheader("Authorization", "Bearer " + transport.token)
            conn.endheaders()
        except (OSError, http.client.HTTPException) as err:
            raise _unreachable(transport, err) from None
        tls = isinstance(conn.sock, ssl.SSLSocket)
        if tls:
            interim, head = _read_interim_tls(conn.sock, CONTINUE_WAIT_SECONDS)
        else:
            interim, head = _peek_interim(conn.sock, CONTINUE_WAIT_SECONDS), b""
        early = interim == "final"
        if not early:
            progress = Progress(payload.size, label, stream=progress_stream)
            with payload.open() as source:
                offset = 0
                while offset < payload.size:
                    try:
                        # From a file: the kernel copies it to the socket (sendfile), no copy
                        # through Python; from memory or over TLS, socket.sendfile sends it.
                        sent = conn.sock.sendfile(
                            source, offset, min(CHUNK_SIZE, payload.size - offset))
                    except (BrokenPipeError, ConnectionResetError):
                        break  # the server answered and closed: read its answer below
                    if not sent:
                        break  # the file shrank while it was sent; the server refuses the rest
                    offset += sent
                    progress.update(sent)
                    if tls:
                        # The socket may also be readable for the TLS layer's own messages
                        # (session tickets): nothing read in a moment is no answer.
                        if conn.sock.pending() or _answer_waiting(conn.sock):
                            interim, head = _read_interim_tls(conn.sock, 0.05)
                            if interim == "final":
                                break
                    elif _answer_waiting(conn.sock) and _peek_interim(conn.sock, 1.0) != "continue":
                        break  # a final answer before the end of the body is a refusal
            progress.close()
        conn.sock.settimeout(max(transport.timeout or 0, FINISH_TIMEOUT_SECONDS))
        if head:
            conn.sock = _ReplayingSocket(conn.sock, head)
        try:
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            raise errors.ServerConnectionError(
                None,
                "the upload to {} broke off without an answer: {}".format(transport.base_url, err),
                None,
            ) from None
        if resp.status >= 400:
            _raise_for(resp)
        raw = resp.read()
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise errors.DatasiteError(
                "BAD_RESPONSE",
                "the server answered an upload with something that is not JSON",
                resp.status,
            ) from None
    finally:
        if progress is not None:
            progress.close()
        conn.close()


def download(transport, route, path_params, dest, label="Downloading", progress_stream=None):
    """Streams a download route into the open binary file ``dest``; returns (size, sha256).

    Raises ``IntegrityError`` when the bytes do not match the ``X-Content-SHA256`` header (or
    the header is missing) and the server's error for an error answer.
    """
    method, path = route_path(route, path_params)
    conn = _connection(transport, transport.timeout)
    try:
        headers = {"Accept": "*/*"}
        if transport.token:
            headers["Authorization"] = "Bearer " + transport.token
        try:
            conn.request(method, path, headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            raise _unreachable(transport, err) from None
        if resp.status >= 400:
            _raise_for(resp)
        expected = (resp.getheader("X-Content-SHA256") or "").strip().lower()
        length = resp.getheader("Content-Length")
        total = int(length) if length and length.isdigit() else None
        digest = hashlib.sha256()
        size = 0
        progress = Progress(total, label, stream=progress_stream)
        try:
            while True:
                try:
                    chunk = resp.read(CHUNK_SIZE)
                except (OSError, http.client.HTTPException) as err:
                    raise errors.ServerConnectionError(
                        None,
                        "the download from {} broke off: {}".format(transport.base_url, err),
                        None,
                    ) from None
                if not chunk:
                    break
                digest.update(chunk)
                dest.write(chunk)
                size += len(chunk)
                progress.update(len(chunk))
        finally:
            progress.close()
        actual = digest.hexdigest()
        if not expected:
            raise errors.IntegrityError(
                None, "the server sent no X-Content-SHA256 header with {}".format(path), None
            )
        if actual != expected:
            raise errors.IntegrityError(
                None,
                "the bytes of {} do not match their checksum: got sha256 {}, the server said "
                "{}".format(path, actual, expected),
                None,
            )
        return size, actual
    finally:
        conn.close()


class DurableFileWriter:
    """Writes a new file front to back and makes it durable, for a large download that must
    survive a crash once it is done (a sync bundle): the shape of the server's
    ``blob/file_writer.h``.

    The caller reads straight into the writer's 1 MiB blocks (``fill``), and a thread writes full
    blocks in order while the caller fills the next. Where the file system allows, the file is
    opened with ``O_DIRECT``: no copy into the page cache, which on a virtual machine under memory
    pressure was slower than the network and the disk together, and nothing left for the ``fsync``
    at ``finish`` but the tail. Elsewhere it writes through the page cache.
    """

    BLOCK = CHUNK_SIZE
    _ALIGN = 4096

    def __init__(self, fd):
        """Takes over ``fd``, a new empty file open for writing (from ``tempfile.mkstemp``): it
        is closed by ``finish`` or ``close``, or here if this fails."""
        import fcntl
        import mmap
        import queue
        import threading

        self.fd = fd
        try:
            self.direct = False
            direct = getattr(os, "O_DIRECT", 0)
            if direct:
                try:
                    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | direct)
                    self.direct = True
                except OSError:  # EINVAL: this file system has no O_DIRECT (tmpfs)
                    pass
            # mmap'd memory is page-aligned, as O_DIRECT requires.
            self._free = queue.Queue()
            for _ in range(3):  # one filling, up to two queued or being written
                self._free.put(mmap.mmap(-1, self.BLOCK))
            self._full = queue.Queue()
            self._error = None
            self._block = None
            self._filled = 0
            self.size = 0
            self._thread = threading.Thread(target=self._write_queued, daemon=True)
            self._thread.start()
        except BaseException:
            os.close(fd)
            self.fd = None
            raise

    def _write_queued(self):
        while True:
            block = self._full.get()
            if block is None:
                return
            if self._error is None:
                try:
                    self._write_all(memoryview(block))
                except BaseException as err:  # whatever it is, the caller sees it
                    self._error = err
            self._free.put(block)

    def _write_all(self, view):
        while len(view):
            view = view[os.write(self.fd, view):]

    def _raise_if_failed(self):
        if self._error is not None:
            raise self._error

    def fill(self, readinto):
        """Reads the next bytes with ``readinto(memoryview)`` into the block being filled;
        returns how many (0 at the end, as ``readinto`` does)."""
        self._raise_if_failed()
        if self._block is None:
            self._block = self._free.get()
            self._filled = 0
        n = readinto(memoryview(self._block)[self._filled :])
        if n:
            self._filled += n
            self.size += n
            if self._filled == self.BLOCK:
                self._full.put(self._block)
                self._block = None
        return n or 0

    def _stop(self):
        if self._thread.is_alive():
            self._full.put(None)
            self._thread.join()

    def finish(self):
        """Writes what is left, fsyncs and closes; raises the first write error."""
        self._stop()
        self._raise_if_failed()
        if self._block is not None and self._filled:
            view = memoryview(self._block)[: self._filled]
            aligned = self._filled // self._ALIGN * self._ALIGN
            if self.direct:
                import fcntl

                self._write_all(view[:aligned])
                # The last partial 4 KiB can't go direct.
                fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) & ~os.O_DIRECT)
                self._write_all(view[aligned:])
            else:
                self._write_all(view)
        self._block = None
        os.fsync(self.fd)
        self.close()

    def close(self):
        """Stops the writer and closes the file (after ``finish``, or to give up on it)."""
        self._stop()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def read_csv_with_sidecar(source, meta):
    """``sidecar_read_csv``, its refusal as the client's error (the server sent both)."""
    try:
        return sidecar_read_csv(source, meta)
    except SidecarError as err:
        raise errors.DatasiteError(
            "BAD_RESPONSE", "a CSV and its sidecar do not fit: {}".format(err), None
        ) from None


def fetch_object(transport, route, path_params, fmt, label="Downloading", meta=None,
                 sha256=None):
    """Downloads to a temporary file, checks it, and loads it as a Python object. ``meta`` is the
    CSV's sidecar, read with the file's ``sha256``: bytes with another digest (the file was
    replaced since) are refused rather than read with a sidecar not theirs.
    """
    path = _temp_path("." + (fmt or "bin"))
    try:
        with open(path, "wb") as dest:
            _, actual = download(transport, route, path_params, dest, label=label)
        if meta is not None and sha256 is not None and actual != sha256:
            raise errors.IntegrityError(
                None, "the file changed on the server while it was read; read it again", None
            )
        return load_file(path, fmt, meta)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def fetch_to_path(transport, route, path_params, target, label="Downloading"):
    """Downloads to ``target`` (written next to it first, renamed once checked); returns it."""
    target = pathlib.Path(target)
    fd, tmp = tempfile.mkstemp(prefix=".datasite-", dir=str(target.parent or "."))
    try:
        with os.fdopen(fd, "wb") as dest:
            download(transport, route, path_params, dest, label=label)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target
