"""Jobs: runs of code on the server (``client.jobs``, ``job.wait()``, ``job.get()``,
``job.logs()``).

A job's result comes back as JSON, CSV, .npy or bytes and is decoded here: JSON to the Python
value, CSV to a pandas DataFrame (the text without pandas), .npy to a numpy array (bytes without
numpy).
"""

import base64
import binascii
import hashlib
import io
import json
import sys
import time
import warnings

from . import _display, _transfer, errors
from .enums import JobStatus, status_from_server
from .errors import DatasiteWarning, SyftSuccess
from ._listing import ListingMixin, TableList, fetch_all_pages

# Polling of a job that has not ended: the first wait is short (most jobs end within
# milliseconds once running), later ones grow up to POLL_MAX_SECONDS.
POLL_FIRST_SECONDS = 0.005
POLL_MAX_SECONDS = 0.5
POLL_GROWTH = 1.5
_FAILED = (JobStatus.ERRORED, JobStatus.TIMED_OUT, JobStatus.KILLED, JobStatus.INTERRUPTED)
# ``wait()`` shows its progress (status, elapsed time and, in a notebook, the tail of the job's
# stdout) once a job has taken this long; the logs are read at most once per LOG_POLL_SECONDS.
PROGRESS_AFTER_SECONDS = 2.0
LOG_POLL_SECONDS = 1.0
PROGRESS_TAIL_LINES = 20


# Results -----------------------------------------------------------------------------------------


def decode_result(fmt, raw, meta=None):
    """The Python value of a result's bytes in format ``fmt`` (``meta``: a CSV's sidecar)."""
    if fmt == "json":
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise errors.DatasiteError(
                "BAD_RESPONSE", "the job's JSON result does not parse: {}".format(err), None
            ) from None
    if fmt == "csv":
        return _csv_value(raw.decode("utf-8"), meta)
    if fmt == "npy":
        np = _transfer._numpy()
        if np is None:
            return bytes(raw)
        return np.load(io.BytesIO(raw), allow_pickle=False)
    return bytes(raw)


def encode_result(value):
    """``(format, data, meta)`` of a value as a run's result carries it, for ``deposit_result``:
    CSV text with its typed sidecar ``meta`` for a DataFrame or Series (read back exactly, as a
    run's result), base64 of .npy for an ndarray (no object arrays), base64 for bytes, JSON text
    for anything else JSON can say; ``meta`` is None but for CSV.
    """
    pd, np = _transfer._pandas(imported_only=True), _transfer._numpy(imported_only=True)
    if pd is not None and isinstance(value, (pd.DataFrame, pd.Series)):
        buffer = io.BytesIO()
        try:
            meta = _transfer.sidecar_write_csv(value, buffer)
        except _transfer.SidecarError as err:
            raise TypeError(
                "this {} can't be a result exactly: {}".format(type(value).__name__, err)
            ) from None
        return "csv", buffer.getvalue().decode("utf-8"), meta
    if np is not None and isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("an ndarray of Python objects can't be a result (no pickles)")
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return "npy", base64.b64encode(buffer.getvalue()).decode("ascii"), None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes", base64.b64encode(bytes(value)).decode("ascii"), None

    def plain(v):
        if hasattr(v, "item") and callable(v.item):  # numpy scalars
            return v.item()
        if hasattr(v, "tolist") and callable(v.tolist):
            return v.tolist()
        raise TypeError("a {} can't be a result".format(type(v).__name__))

    try:
        text = json.dumps(value, default=plain, allow_nan=False, ensure_ascii=False)
    except ValueError as err:
        raise TypeError("this {} can't be a result: {}".format(type(value).__name__, err)) from None
    return "json", text, None


def _csv_value(text, meta=None):
    pd = _transfer._pandas()
    if pd is None:
        return text
    if meta is not None:
        return _transfer.read_csv_with_sidecar(io.BytesIO(text.encode("utf-8")), meta)
    if not text.strip():
        return pd.DataFrame()
    return _transfer.sidecar_read_plain_csv(io.StringIO(text))


def decode_inline(fmt, inline, meta=None):
    """The Python value of a result carried inline in the job (JSON value, CSV text, base64)."""
    if fmt == "json":
        return inline
    if fmt == "csv":
        return _csv_value(inline, meta)
    try:
        raw = base64.b64decode(inline, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise errors.DatasiteError(
            "BAD_RESPONSE", "the job's inline {} result is not base64".format(fmt), None
        ) from None
    return decode_result(fmt, raw)


# Logs --------------------------------------------------------------------------------------------


class JobLogs(str):
    """A job's output as text (stdout, then stderr when you may read it); ``stdout`` and
    ``stderr`` are also apart (``stderr`` is None for data scientists).
    """

    def __new__(cls, stdout, stderr, next_since=None, ended=None):
        text = stdout or ""
        if stderr:
            if text and not text.endswith("\n"):
                text += "\n"
            text += "--- stderr ---\n" + stderr
        obj = super().__new__(cls, text)
        obj.stdout = stdout
        obj.stderr = stderr
        obj.next_since = next_since
        obj.ended = ended
        return obj

    def __repr__(self):
        return str(self)

    def _repr_html_(self):
        return '<pre class="datasite-logs">{}</pre>'.format(_display.esc(str(self)))


def _in_notebook():
    shell = sys.modules.get("IPython")
    shell = getattr(shell, "get_ipython", lambda: None)() if shell else None
    return shell is not None and hasattr(shell, "kernel")


class _Progress:
    """What ``Job.wait`` shows while a long job runs: in a notebook, a box updated in place with
    the status, the elapsed time and the tail of the stdout the caller may read; in a terminal, one
    line on stderr rewritten in place; elsewhere nothing.
    """

    def __init__(self, job, enabled):
        self.job = job
        self.start = time.monotonic()
        self.notebook = enabled is not False and _in_notebook()
        self.terminal = (
            enabled is not False and not self.notebook and getattr(sys.stderr, "isatty", bool)()
        )
        self.handle = None
        self.since = 0
        self.tail = ""
        self.logs_at = 0.0
        self.shown = False

    def update(self, final=False):
        elapsed = time.monotonic() - self.start
        if not (self.notebook or self.terminal):
            return
        if elapsed < PROGRESS_AFTER_SECONDS and not self.shown:
            return
        self.shown = True
        status = _display.show(self.job.status)
        if self.terminal:
            end = "\n" if final else ""
            sys.stderr.write(
                "\rjob {} of {}: {}, {:.0f} s{}".format(
                    _display.show(self.job.id),
                    _display.show(self.job.code_name),
                    status,
                    elapsed,
                    end,
                )
            )
            sys.stderr.flush()
            return
        if final or time.monotonic() - self.logs_at >= LOG_POLL_SECONDS:
            self._read_logs()
        html_text = (
            '<div class="datasite-progress"><strong>Job {}</strong> of <code>{}</code>: {} '
            "&middot; {:.0f} s{}</div>".format(
                _display.esc(self.job.id),
                _display.esc(self.job.code_name),
                _display.badge(status),
                elapsed,
                '<pre class="datasite-logs">{}</pre>'.format(_display.esc(self.tail))
                if self.tail
                else "",
            )
        )
        try:
            from IPython.display import HTML, display
        except ImportError:
            self.notebook = False
            return
        if self.handle is None:
            self.handle = display(HTML(html_text), display_id=True)
        else:
            self.handle.update(HTML(html_text))

    def _read_logs(self):
        self.logs_at = time.monotonic()
        try:
            logs = self.job.logs(stderr=False, since=self.since)
        except errors.DatasiteError:
            return
        if logs.stdout is None:
            return
        self.since = logs.next_since if logs.next_since is not None else self.since
        lines = (self.tail + logs.stdout).split("\n")
        self.tail = "\n".join(lines[-PROGRESS_TAIL_LINES - 1 :])


# Jobs --------------------------------------------------------------------------------------------


def _user_text(user):
    if not isinstance(user, dict):
        return _display.show(user)
    name, email = user.get("name"), user.get("email")
    if name and email:
        return "{} <{}>".format(name, email)
    return _display.show(name or email)


class Job:
    """One run of code on the server, as the server last described it.

    ``status`` is a ``sy.JobStatus``; ``wait()`` polls until the job ended, ``get()`` (or
    ``result``) waits and returns the value, raising ``JobFailedError`` carrying the job's error
    when it failed. Data owners ``release()`` results held for review.
    """

    def __init__(self, data, client):
        self._client = client
        self._value = None
        self._value_loaded = False
        self._load(data)

    def _load(self, data):
        data = dict(data or {})
        self._data = data
        self.id = data.get("id")
        self.code_id = data.get("code_id")
        self.code_name = data.get("code_name")
        self.kind = data.get("kind")
        self.status = status_from_server(JobStatus, data.get("status"))
        self.error = data.get("error")
        # A failed run's kind of failure ("code_error", "timeout", "memory", "cpu_time",
        # "result_too_large", "killed", "sandbox", "not_kept", "input_policy_refused",
        # "output_policy_refused", "policy_error"); on private data its requester
        # reads only this and a fixed text until a data owner calls release_error().
        self.failure = data.get("failure")
        self.error_released = bool(data.get("error_released"))
        self.deposited = bool(data.get("deposited"))
        self.user = data.get("user")
        self.created_at = data.get("created_at")
        self.started_at = data.get("started_at")
        self.finished_at = data.get("finished_at")
        self.attempts = data.get("attempts")
        self.reused = bool(data.get("reused"))
        self.result_info = data.get("result")
        # The grant the run was made under (approved for repeated use), or None.
        self.grant_id = data.get("grant_id")
        # Why an output check held the result (the rule, never a value), e.g.
        # "min_cell_count: a count below 10"; None when no rule held it.
        info = self.result_info if isinstance(self.result_info, dict) else {}
        self.held_reason = info.get("held_reason")

    def to_dict(self):
        return dict(self._data)

    def _call(self, route, **kwargs):
        return self._client._transport.call(route, path_params={"id": self.id}, **kwargs)

    # PySyft's names.
    @property
    def user_code_id(self):
        return self.code_id

    @property
    def requested_by(self):
        return self.user

    @property
    def creation_time(self):
        return self.created_at

    @property
    def finished(self):
        return isinstance(self.status, JobStatus) and self.status.finished

    @property
    def held(self):
        """True while the result waits for a data owner's release (output review)."""
        return bool(isinstance(self.result_info, dict) and self.result_info.get("held"))

    @property
    def result_format(self):
        return self.result_info.get("format") if isinstance(self.result_info, dict) else None

    @property
    def result_size(self):
        return self.result_info.get("size") if isinstance(self.result_info, dict) else None

    def refresh(self):
        """Reads the job anew from the server; returns it."""
        self._load(self._call("job_get"))
        return self

    fetch = refresh

    def wait(self, timeout=None, job_only=False, progress=None):
        """Polls the server until the job has ended (first after 5 ms, then less and less often)
        and returns the job. ``timeout`` in seconds: ``JobTimeoutError`` when it runs out (the
        job goes on). After 2 s it shows the job's progress: in a notebook its status, the
        elapsed time and the tail of the stdout you may read, updated in place; in a terminal a
        status line on stderr; nothing elsewhere, nor with ``progress=False``.
        ``job_only`` is accepted for PySyft's signature (a job's result is never a link here).
        """
        if timeout is not None and (isinstance(timeout, bool) or timeout < 0):
            raise ValueError("timeout must be a number of seconds >= 0, got {!r}".format(timeout))
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = POLL_FIRST_SECONDS
        shown = _Progress(self, progress) if not self.finished else None
        while not self.finished:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise errors.JobTimeoutError(
                        None,
                        "job {} of {} is still {} after {} s".format(
                            self.id, self.code_name, self.status, timeout
                        ),
                        None,
                    )
                time.sleep(min(pause, left))
            else:
                time.sleep(pause)
            pause = min(pause * POLL_GROWTH, POLL_MAX_SECONDS)
            self.refresh()
            shown.update(final=self.finished)
        return self

    def _failure(self):
        return errors.JobFailedError(
            None,
            "job {} of {} {}: {}".format(
                self.id,
                self.code_name,
                _display.show(self.status).replace("_", " "),
                self.error or "no reason given",
            ),
            None,
            job=self,
        )

    def get(self, timeout=None):
        """Waits for the job and returns its result's value.

        Raises ``JobFailedError`` (with the job's error text) when the job failed, and
        ``FailedPreconditionError`` while the result is held for a data owner's review (its
        message names the output check that held it, as ``held_reason`` does).
        """
        self.wait(timeout)
        if self.status in _FAILED:
            raise self._failure()
        # Held from this caller: the server names no format (data owners read held results).
        def held_here():
            return self.held and not (self.result_info or {}).get("format")

        if held_here():
            self.refresh()
        if held_here():
            raise errors.FailedPreconditionError(None, self._held_message(), None)
        if self.status != JobStatus.COMPLETED or not isinstance(self.result_info, dict):
            raise errors.DatasiteError(
                "BAD_RESPONSE",
                "job {} ended {} without a result".format(self.id, self.status),
                None,
            )
        if not self._value_loaded:
            self._value = self._load_value()
            self._value_loaded = True
        return self._value

    def _held_message(self):
        if self.held_reason:
            return (
                "the result of job {} of {} is held for a data owner's review: {} (an output "
                "check of its data; a data owner may release it)".format(
                    self.id, self.code_name, self.held_reason
                )
            )
        why = (
            "a data owner deposited it; it is released when the request is approved"
            if self.deposited
            else "the server's output review is on"
        )
        return "the result of job {} of {} is held until a data owner releases it ({})".format(
            self.id, self.code_name, why
        )

    @property
    def result(self):
        """The result's value (waits for the job); see ``get``."""
        return self.get()

    resolve = result

    def _load_value(self):
        fmt = self.result_info.get("format")
        inline = self.result_info.get("inline")
        meta = self.result_info.get("meta")
        if inline is not None:
            return decode_inline(fmt, inline, meta)
        # Large results, and JSON null (which reads the same as "not inline"), are fetched.
        raw, headers = self._client._transport.call_raw(
            "job_result",
            path_params={"id": self.id},
            timeout=max(self._client._transport.timeout, 600),
        )
        expected = (headers.get("x-content-sha256") or "").strip().lower()
        if expected and hashlib.sha256(raw).hexdigest() != expected:
            raise errors.IntegrityError(
                None, "the result of job {} does not match its checksum".format(self.id), None
            )
        fmt = headers.get("x-datasite-result-format") or fmt
        return decode_result(fmt, raw, meta)

    def logs(self, stdout=True, stderr=True, since=0, _print=False):
        """The job's output so far — while it runs too: stdout for whoever may see its result
        (its user for mock runs, and for private runs unless held for review; data owners
        always), and stderr for data owners and admins (while it runs too; its user reads a mock
        run's stderr once it ended).

        Returns ``JobLogs`` (a str; ``.stdout``, ``.stderr``). To follow a running job, pass
        ``since=logs.next_since`` to read only the stdout printed after the previous call.
        ``_print=True`` (PySyft's) prints them instead and returns None.
        """
        query = {"since": str(int(since))} if since else None
        data = self._call("job_logs", query=query) or {}
        logs = JobLogs(
            data.get("stdout") if stdout else None,
            data.get("stderr") if stderr else None,
            data.get("next_since"),
            data.get("ended"),
        )
        if _print:
            print(logs)
            return None
        return logs

    def kill(self):
        """Stops the job (its user, or a data owner); FailedPreconditionError when it ended."""
        self._load(self._call("job_kill", body={}))
        return SyftSuccess("Job {} killed.".format(self.id), value=self)

    def release(self):
        """Releases a held result to the requester (data owners and admins)."""
        self._load(self._call("job_release", body={}))
        return SyftSuccess(
            "Result of job {} released to {}.".format(self.id, _user_text(self.user)), value=self
        )

    def release_error(self):
        """Shows a failed private run's error text and stderr (its traceback) to its requester
        (data owners and admins). Until then they read only the kind of failure, since what the
        code raised may quote private values: read it first (``job.error``, ``job.logs()``).
        """
        self._load(self._call("job_release_error", body={}))
        return SyftSuccess(
            "The error of job {} released to {}.".format(self.id, _user_text(self.user)),
            value=self,
        )

    # Display --------------------------------------------------------------------------------

    def _result_text(self):
        info = self.result_info
        if not isinstance(info, dict):
            return ""
        text = "{}, {} bytes".format(info.get("format"), info.get("size"))
        if info.get("held"):
            text += ", held for review"
            if self.held_reason:
                text += " ({})".format(self.held_reason)
        return text

    def _rows(self):
        rows = [
            ("Id", self.id),
            ("Code", "{} ({})".format(_display.show(self.code_name), _display.show(self.code_id))),
            ("Kind", self.kind),
            ("Status", self.status),
            ("User", _user_text(self.user)),
            ("Created at", self.created_at),
            ("Started at", self.started_at),
            ("Finished at", self.finished_at),
            ("Attempts", self.attempts),
        ]
        if self.failure:
            rows.append(("Failure", self.failure))
        if self.error:
            rows.append(("Error", self.error))
        if self.deposited:
            rows.append(("Deposited", "yes: a data owner deposited this result"))
        if self.result_info:
            rows.append(("Result", self._result_text()))
        if self.reused:
            rows.append(("Reused", "yes: the output policy was used up; the last run's result"))
        return rows

    def __repr__(self):
        return _display.text_fields("Job", self._rows())

    def _repr_html_(self):
        return _display.html_fields("Job: " + _display.show(self.code_name), self._rows())

    def _repr_markdown_(self):
        return _display.md_fields("Job: " + _display.show(self.code_name), self._rows())


class ResultPointer:
    """What a blocking run answers (PySyft's pointer to the result): ``get()`` returns the
    value; ``job`` is the run's ``Job``.
    """

    def __init__(self, job):
        self.job = job

    @property
    def id(self):
        return self.job.id

    @property
    def reused(self):
        return self.job.reused

    @property
    def status(self):
        return self.job.status

    def get(self, timeout=None):
        return self.job.get(timeout)

    def wait(self, timeout=None):
        self.job.wait(timeout)
        return self

    def logs(self, stdout=True, stderr=True, _print=False):
        return self.job.logs(stdout, stderr, _print=_print)

    def _label(self):
        return "Pointer to the result of {} (job {}: {})".format(
            _display.show(self.job.code_name),
            _display.show(self.job.id),
            self.job._result_text() or _display.show(self.job.status),
        )

    def __repr__(self):
        return self._label() + "; .get() returns the value"

    def _repr_html_(self):
        return "<p><strong>{}</strong>; <code>.get()</code> returns the value</p>".format(
            _display.esc(self._label())
        )


def pointer_for(job, warn_reused=True):
    """The answer of a blocking run: raises ``JobFailedError`` for a failed job, warns when the
    output policy was used up and the last result is given again.
    """
    if job.status in _FAILED:
        raise job._failure()
    if job.reused and warn_reused:
        warnings.warn(
            DatasiteWarning(
                "the output policy of {} is used up: this is the result of its last run "
                "(job {}), not a new one".format(job.code_name, job.id)
            ),
            stacklevel=3,
        )
    return ResultPointer(job)


_JOB_COLUMNS = ("id", "code", "kind", "status", "user", "created_at", "error")


class JobList(TableList):
    """Jobs that render as a table; index by position or by id."""

    _noun = "job"
    _title = "Jobs"
    _columns = _JOB_COLUMNS

    def _row(self, j):
        return [j.id, j.code_name, j.kind, j.status, _user_text(j.user), j.created_at, j.error]


class JobCollection(ListingMixin):
    """``client.jobs``: your jobs (data owners and admins: everyone's), oldest first, fetched anew
    on each use. List-like, with ``get``, ``get_all``, ``get_by_user_code_id``.
    """

    def get_all(self, code_id=None, status=None):
        """Jobs, oldest first (every page); optionally of one code and/or in one status."""
        if code_id is not None and not isinstance(code_id, str):
            code_id = getattr(code_id, "id", code_id)
        if isinstance(status, str):
            status = JobStatus(status).value
        elif status is not None:
            status = JobStatus(status).value
        items = fetch_all_pages(
            self._client._transport, "jobs_list", {"code_id": code_id, "status": status}
        )
        return JobList(Job(item, self._client) for item in items)

    def get_by_user_code_id(self, code_id):
        return self.get_all(code_id=code_id)

    def get(self, job_id):
        """One job by id; NotFoundError when there is none you may see."""
        return Job(
            self._client._transport.call("job_get", path_params={"id": job_id}), self._client
        )

    get_by_uid = get
