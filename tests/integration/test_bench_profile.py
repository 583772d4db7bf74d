"""bench/jobs_queue.py's round-trip count: PostgreSQL's statement log read into statements and
transactions (the figures docs/BENCHMARKS.md gives as the cause of an unmet goal)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bench"))

from jobs_queue import log_statements, transactions  # noqa: E402

# As PostgreSQL 15 logs with log_statement = 'all' and its default log_line_prefix '%m [%p] '.
LOG = """\
2026-12-03 05:31:00.100 UTC [101] LOG:  statement: BEGIN; SELECT pg_advisory_xact_lock(1684108385)
2026-12-03 05:31:00.101 UTC [101] LOG:  execute s12: SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1
2026-12-03 05:31:00.102 UTC [202] LOG:  execute <unnamed>: SELECT 1
2026-12-03 05:31:00.103 UTC [101] LOG:  execute s13: INSERT INTO audit_events (seq) VALUES ($1)
2026-12-03 05:31:00.103 UTC [101] DETAIL:  parameters: $1 = '7'
2026-12-03 05:31:00.104 UTC [202] LOG:  statement: SELECT 1
2026-12-03 05:31:00.105 UTC [101] LOG:  statement: COMMIT
2026-12-03 05:31:00.106 UTC [101] LOG:  checkpoint starting: time
2026-12-03 05:31:00.107 UTC [101] LOG:  execute s14: UPDATE jobs SET held = 0 WHERE id = $1
"""


def test_statements_are_read_with_their_backend_and_kind(tmp_path):
    log = tmp_path / "postgres.log"
    log.write_text(LOG)
    stmts = log_statements(str(log), 0, len(LOG.encode()))
    assert [(pid, kind) for pid, kind, _ in stmts] == [
        (101, "simple"), (101, "prepared"), (202, "unnamed"), (101, "prepared"), (202, "simple"),
        (101, "simple"), (101, "prepared")]
    assert stmts[1][2] == "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"


def test_only_the_given_byte_range_is_read(tmp_path):
    log = tmp_path / "postgres.log"
    log.write_text(LOG)
    start = LOG.index("2026-12-03 05:31:00.104")
    assert [t for _, _, t in log_statements(str(log), start, len(LOG))] == ["SELECT 1", "COMMIT",
                                                                     "UPDATE jobs SET held = 0 WHERE id = $1"]


def test_a_transaction_is_a_begin_to_its_commit_or_a_statement_alone(tmp_path):
    log = tmp_path / "postgres.log"
    log.write_text(LOG)
    # Backend 101: one explicit transaction of three statements, then one on its own after the
    # COMMIT; backend 202: two on their own.
    assert transactions(log_statements(str(log), 0, len(LOG))) == 4
