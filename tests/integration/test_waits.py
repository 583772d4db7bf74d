"""Waits for jobs (GET /api/v1/jobs/{id}/wait and blocking runs) against the wait lane's threads:
the waits of all users together stay under its thread count, a run start that answers at once
never queues behind them, and a wait whose client has gone gives back its thread and its place.
"""

import select
import socket
import threading
import time

from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, Api, assert_error, needs_sandbox, unique

# The server's wait lane has 32 threads, of which waits hold at most 28 (CodeOptions::max_waits).
WAITS_IN_ALL = 28


def scientist(api, root):
    user = api.create_user(root)
    return api.login(user["email"], PASSWORD)


def slow_job(api, token, seconds=60):
    """A mock run (no inputs) that sleeps, started without blocking: its job JSON."""
    name = unique("wait_slow").replace("-", "_")
    code = api.post("/api/v1/code", {"name": name, "source": "import time\ndef {}():\n"
                                     "    time.sleep({})\n".format(name, seconds)},
                    token=token).json
    job = api.post("/api/v1/code/{}/run".format(code["id"]), {"mock": True, "blocking": False},
                   token=token)
    assert job.status == 201, job
    return job.json


def send_raw(port, request):
    """Sends `request` (text) on a new connection and leaves it open: the socket."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    sock.sendall(request.encode())
    return sock


def wait_request(job_id, token, timeout):
    return ("GET /api/v1/jobs/{}/wait?timeout={} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Authorization: Bearer {}\r\n\r\n".format(job_id, timeout, token))


def blocking_run_request(code_id, token):
    body = '{"mock": true}'
    return ("POST /api/v1/code/{}/run HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n"
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}".format(
                code_id, token, len(body), body))


@needs_sandbox
def test_many_users_waits_leave_room_for_run_starts_and_refusals(module_server):
    """Regression (a cold attack): 8 scientists, each within their 4 waits, held all 32 threads of
    the wait lane; every run start then went unanswered, {"blocking": false} ones included, and
    further waits queued for a thread instead of being refused."""
    api = Api(module_server.port)
    root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    owner = api.login(api.create_user(root, role="data_owner")["email"], PASSWORD)
    users = [scientist(api, root) for _ in range(8)]
    jobs = [(token, slow_job(api, token)) for token in users]
    answers = []

    def wait(token, job):
        answers.append(api.get("/api/v1/jobs/{}/wait?timeout=10".format(job["id"]), token=token))

    waits = [threading.Thread(target=wait, args=(token, job))
             for token, job in jobs for _ in range(4)]
    for t in waits:
        t.start()
    ninth = scientist(api, root)
    try:
        time.sleep(2)
        # A run start that does not wait for its job is answered at once.
        name = unique("wait_quick").replace("-", "_")
        quick = api.post("/api/v1/code", {"name": name, "source": "def {}():\n    return 1\n"
                                          .format(name)}, token=owner).json
        started = time.monotonic()
        run = api.post("/api/v1/code/{}/run".format(quick["id"]), {"blocking": False},
                       token=owner)
        took = time.monotonic() - started
        assert run.status == 201, run
        assert took < 5, "the run start took {:.1f} s behind the waits".format(took)
        # Past the waits of all users, another user's wait and blocking run are refused at once.
        own = slow_job(api, ninth)
        started = time.monotonic()
        refused = api.get("/api/v1/jobs/{}/wait?timeout=5".format(own["id"]), token=ninth)
        took = time.monotonic() - started
        assert_error(refused, 429, "RESOURCE_EXHAUSTED")
        assert refused.headers.get("retry-after") == "1"
        assert took < 5, "the refusal took {:.1f} s behind the waits".format(took)
        assert_error(api.post("/api/v1/code/{}/run".format(own["code_id"]), {"mock": True},
                              token=ninth), 429, "RESOURCE_EXHAUSTED")
    finally:
        for t in waits:
            t.join(timeout=30)
        for token, job in jobs:
            api.post("/api/v1/jobs/{}/kill".format(job["id"]), {}, token=token)
    statuses = sorted(a.status for a in answers)
    assert statuses == [200] * WAITS_IN_ALL + [429] * (32 - WAITS_IN_ALL), statuses


@needs_sandbox
def test_a_wait_whose_client_left_gives_back_its_place(module_server):
    """Regression (a cold attack): a wait or blocking run whose client closed its connection held
    its thread and its user's place among the waits until its timeout (up to 600 s)."""
    api = Api(module_server.port)
    root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    token = scientist(api, root)
    job = slow_job(api, token)
    requests = [wait_request(job["id"], token, 120)] * 2
    requests += [blocking_run_request(job["code_id"], token)] * 2
    socks = [send_raw(module_server.port, r) for r in requests]
    try:
        # All four places taken (the requests may take a moment to reach their handlers). The probe
        # holds a place for a moment too: a request that came in then was refused (it has an
        # answer), so it is sent again.
        deadline = time.monotonic() + 10
        while True:
            fifth = api.get("/api/v1/jobs/{}/wait?timeout=0".format(job["id"]), token=token)
            answered = select.select(socks, [], [], 0)[0]
            for i, s in enumerate(socks):
                if s in answered:
                    s.close()
                    socks[i] = send_raw(module_server.port, requests[i])
            if (fifth.status == 429 and not answered) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert_error(fifth, 429, "RESOURCE_EXHAUSTED")
    finally:
        for s in socks:
            s.close()
    # Their places come back well before the waits' 120 s.
    deadline = time.monotonic() + 15
    while True:
        again = api.get("/api/v1/jobs/{}/wait?timeout=0".format(job["id"]), token=token)
        if again.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert again.status == 200, again
    for other in api.get("/api/v1/jobs?code_id={}".format(job["code_id"]), token=token).json[
            "items"]:
        api.post("/api/v1/jobs/{}/kill".format(other["id"]), {}, token=token)
