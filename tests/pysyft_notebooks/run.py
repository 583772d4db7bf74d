"""Runs PySyft 0.9's own notebooks against datasite, cell by cell, in a real Jupyter kernel.

The notebooks are read at run time from a git checkout of OpenMined/PySyft (none of them is
committed here) and changed in exactly two ways before they run:

- ``syft`` becomes ``datasite`` where it is imported (``import syft as sy``,
  ``from syft.service.user.user import ...``);
- PySyft's admin email ``info@openmined.org`` becomes ours, ``info@example.org``.

Each notebook runs top to bottom in a fresh ``ipykernel`` (the way a user runs it), with every
cell executed even after one fails; the notebooks of one folder run in order in one scratch
directory and ``XDG_DATA_HOME`` (a later one uses the server an earlier one set up). The result
of each cell is compared with ``expected.json``: the cells that may fail, each with the reason
(what this machine lacks, which open issue builds it, what is not built, or the earlier cell it
follows from). A cell that fails without being listed is a mismatch; the exit status is the
number of mismatches (capped at 100); a listed cell that now passes is printed as a note (it
fails nothing, so a cell that passes only sometimes can't turn CI red); 77 when there is no PySyft checkout
(ctest reports the test as skipped).

Usage::

    /usr/bin/python3 tests/pysyft_notebooks/run.py [--repo GITDIR] [--only SUBSTRING]...
        [--report FILE.json] [--timeout SECONDS]

``--repo`` defaults to ``$PYSYFT_REPO``, then ``../.mirror/OpenMined+PySyft/repo`` beside this
checkout (where the tool library's ``fetch`` puts it).
"""

import argparse
import collections
import json
import os
import pathlib
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
EXPECTED_PATH = HERE / "expected.json"
DEFAULT_REPO = str(REPO_ROOT.parent / ".mirror" / "OpenMined+PySyft" / "repo")
PYSYFT_ADMIN_EMAIL = "info@openmined.org"
OUR_ADMIN_EMAIL = "info@example.org"
# The notebooks in scope: PySyft's tutorials and API notebooks (scenarios need a cluster,
# BigQuery or enclaves; deployments need containers and clouds).
NOTEBOOK_DIRS = (
    "notebooks/tutorials/hello-syft",
    "notebooks/tutorials/data-owner",
    "notebooks/tutorials/data-scientist",
    "notebooks/tutorials/model-training",
    "notebooks/tutorials/pandas-cookbook",
    "notebooks/api/0.8",
    "notebooks/scenarios/getting-started",
)

# The exit status when there is no PySyft checkout (ctest's SKIP_RETURN_CODE).
SKIPPED = 77

_IMPORT_RE = re.compile(r"\b(import|from)(\s+)syft\b")


def rewrite(source):
    """The two permitted changes: the module's name where imported, and the admin email."""
    source = _IMPORT_RE.sub(lambda m: m.group(1) + m.group(2) + "datasite", source)
    return source.replace(PYSYFT_ADMIN_EMAIL, OUR_ADMIN_EMAIL)


def git(repo, *args):
    return subprocess.run(
        ["git", "--git-dir", repo, *args], check=True, capture_output=True, text=True
    ).stdout


def list_notebooks(repo, only):
    names = git(repo, "ls-tree", "-r", "--name-only", "HEAD", "--", *NOTEBOOK_DIRS).split()
    names = sorted(n for n in names if n.endswith(".ipynb"))
    if only:
        names = [n for n in names if any(o in n for o in only)]
    return names


def kernel_spec_dir(root):
    """A kernelspec named ``datasite-py3`` that runs ipykernel on Debian's Python (the one
    that sees pandas) with the client on its path."""
    spec = root / "kernels" / "datasite-py3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["/usr/bin/python3", "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "datasite (Debian python3)",
                "language": "python",
            }
        )
    )
    return root


def run_notebook(repo, name, timeout, scratch):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.reads(git(repo, "show", "HEAD:" + name), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = rewrite(cell.source)
    # The notebooks of one folder are a series (a later one logs in to the server and data an
    # earlier one made, as a user running them in order would): they share a folder and its
    # XDG_DATA_HOME, which holds the files PySyft keeps beside them (e.g. mnist_dataset.py).
    folder = posixpath.dirname(name)
    work = scratch / re.sub(r"[^A-Za-z0-9_.-]", "_", folder)
    if not work.exists():
        work.mkdir()
        for sibling in git(repo, "ls-tree", "--name-only", "HEAD", folder + "/").split():
            if sibling.endswith(".py"):
                (work / posixpath.basename(sibling)).write_text(git(repo, "show", "HEAD:" + sibling))
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = str(work / "xdg")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "python")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="datasite-py3",
        allow_errors=True,
        resources={"metadata": {"path": str(work)}},
    )
    started = time.monotonic()
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel inherits the environment of this process
    try:
        client.execute()
        crashed = None
    except Exception as err:  # a dead kernel or a cell past its timeout stops the notebook
        crashed = "{}: {}".format(type(err).__name__, str(err).splitlines()[0] if str(err) else "")
    finally:
        os.environ.clear()
        os.environ.update(saved)
        _land_leftovers(work / "xdg")
    cells = []
    index = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        status = "ok"
        error = None
        if cell.get("execution_count") is None and cell.source.strip():
            status = "not-run"
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                status = "error"
                error = "{}: {}".format(out.get("ename"), (out.get("evalue") or "")[:300])
        cells.append({"index": index, "status": status, "error": error,
                      "first_line": cell.source.strip().splitlines()[0][:100] if cell.source.strip() else ""})
        index += 1
    return {"notebook": name, "seconds": round(time.monotonic() - started, 1),
            "crashed": crashed, "cells": cells}


def _land_leftovers(xdg):
    """Stops servers a notebook launched and did not land (it failed before its last cell)."""
    for info in pathlib.Path(xdg).glob("datasite/*/server.json"):
        try:
            pid = int(json.loads(info.read_text())["pid"])
            with open("/proc/{}/comm".format(pid)) as f:
                if f.read().strip() == "datasite":
                    os.kill(pid, 15)
        except (OSError, ValueError, KeyError):
            pass


# Why a cell may fail here, by what its error names. Anything else is a defect of ours (or needs a
# reason written by hand in expected.json).
LACKS = {
    "torch": "needs torch, which Debian 12 does not package",
    "kr8s": "needs kr8s and a Kubernetes cluster",
    "docker": "needs the docker Python package and a container engine",
    "mnist_dataset": "needs a helper module that downloads MNIST (no internet here)",
    "opendp": "needs opendp, not packaged by Debian",
}
LATER = (
    ("Project", "projects: issue 13"),
    ("projects", "projects: issue 13"),
    ("get_project", "projects: issue 13"),
    ("service.project", "projects: issue 13"),
    ("notifications", "notifications: issue 13"),
    ("forgot_password", "password reset by token: issue 13 (it goes through notifications)"),
    ("request_password_reset", "password reset by token: issue 13 (it goes through notifications)"),
    ("reset_password", "password reset by token: issue 13 (it goes through notifications)"),
    ("api_endpoint", "custom API endpoints: issue 17"),
    ("no operation 'api'", "custom API endpoints: issue 17"),
    ("no operation 'first'", "custom API endpoints: issue 17"),
    ("no operation 'third'", "custom API endpoints: issue 17"),
    ("no operation 'test'", "custom API endpoints: issue 17"),
    ("custom_api", "custom API endpoints: issue 17"),
    ("worker_pool", "worker pools: issue 19"),
    ("worker_image", "worker pools: issue 19"),
    ("DEV_MODE", "worker images: issue 19 (it reads PySyft's image tag settings)"),
    ("sync", "sync: issue 14"),
)
# What datasite does not build, on purpose or not yet; each is said in docs/PYSYFT_NOTEBOOKS.md.
NOT_BUILT = (
    ("autocache", "sy.autocache downloads a file from the internet (none here)"),
    ("data_subject_registry", "not built: a server-wide data-subject registry (data subjects are "
     "kept on assets)"),
    ("datasite.serde", "not built: PySyft's serde module (objects travel as data formats, never "
     "pickles)"),
    ("datasite.util", "PySyft's own test helpers (syft.util)"),
    ("test_settings", "PySyft's own test helpers (test_settings)"),
    ("No module named 'result'", "needs the 'result' package, not packaged by Debian"),
    ("upload_files", "not built: free-standing blob uploads (client.upload_files)"),
    ("credentials", "not built: client.credentials (PySyft's signing keys; datasite uses tokens)"),
    ("free-standing objects", "not built: free-standing server objects (ActionObject.send)"),
    ("AuthedServiceContext", "not built: PySyft's server internals (AuthedServiceContext, "
     "context.server) that this policy calls; datasite runs custom policies in its sandbox "
     "with a small context"),
    ("CodeHistory' object has no attribute", "not built: code_histories[email].<function name>"),
    ("no operation 'set'", "not built: settings.set(a whole settings object); settings.update "
     "does it field by field"),
    ("ActionObject' has no attribute 'empty'", "not built: ActionObject.empty() placeholders"),
    ("has no attribute 'pointer'", "not built: pointers to assets and remote calls on them "
     "(datasite runs only submitted functions)"),
    ("has no attribute 'numpy'", "not built: remote numpy calls (datasite runs only submitted "
     "functions)"),
    ("no attribute 'config'", "worker images: issue 19"),
    ("runs no Docker", "not built: Docker worker images and registries (a worker image here is a "
     "Python environment: sy.PythonWorkerConfig)"),
    ("object has no attribute 'refresh'", "not built: client.refresh() (client.api.refresh() "
     "reads the server's description again)"),
)
# Errors of a cell that uses what an earlier failed cell should have made (an account, a dataset,
# a request, a file): reported as following from that cell.
_FOLLOWS = ("NameError", "IndexError", "AssertionError", "AuthenticationError", "no code named",
            "AlreadyExistsError", "FileNotFoundError", "has no assets", "has no private data",
            "PermissionDeniedError")


def classify(cell, failed_before):
    """A proposed reason for a failed cell, or None when no rule explains it."""
    error = cell["error"] or ""
    for module, reason in LACKS.items():
        if "No module named '{}'".format(module) in error:
            return reason
    for word, reason in LATER + NOT_BUILT:
        if word in error:
            return reason
    if "urlopen error" in error or "Name or service not known" in error:
        return "downloads from the internet (no internet here)"
    if failed_before and any(word in error for word in _FOLLOWS):
        return "follows from cell {} failing ({})".format(failed_before[0], error[:60])
    return None


def propose(results, expected):
    """expected.json as this run suggests it: known reasons kept, new failures classified."""
    proposal = {}
    for result in results:
        old = expected.get(result["notebook"], {})
        cells, failed_before = {}, []
        for cell in result["cells"]:
            if cell["status"] == "ok":
                continue
            key = str(cell["index"])
            reason = old.get(key) or classify(cell, failed_before)
            cells[key] = reason or "UNEXPLAINED: " + (cell["error"] or cell["status"])
            failed_before.append(cell["index"])
        if cells:
            proposal[result["notebook"]] = cells
    return proposal


def compare(result, expected):
    """Mismatches between one notebook's cells and its expected failures."""
    allowed = expected.get(result["notebook"], {})
    whole = allowed.get("*")
    mismatches = []
    for cell in result["cells"]:
        reason = allowed.get(str(cell["index"])) or whole
        failed = cell["status"] != "ok"
        if failed and not reason:
            mismatches.append("{} cell {}: {} ({})".format(
                result["notebook"], cell["index"], cell["error"] or cell["status"], cell["first_line"]))
        elif not failed and reason and not whole:
            print("note: {} cell {} passes but is listed as expected to fail ({}): take it off "
                  "expected.json".format(result["notebook"], cell["index"], reason))
    return mismatches


def table(results, reasons):
    """docs/PYSYFT_NOTEBOOKS.md's table: per notebook, cells passing and why the others fail."""
    lines = ["| notebook | cells passing | why the others fail (cells) |", "|---|---|---|"]
    total = passing = 0
    for result in results:
        counts = collections.Counter()
        allowed = reasons.get(result["notebook"], {})
        for cell in result["cells"]:
            if cell["status"] == "ok":
                continue
            reason = allowed.get(str(cell["index"])) or allowed.get("*") or "unexplained"
            if reason.startswith("follows from cell"):
                reason = "follows from an earlier failed cell"
            counts[reason] += 1
        ok = sum(c["status"] == "ok" for c in result["cells"])
        total, passing = total + len(result["cells"]), passing + ok
        why = "; ".join("{} ({})".format(r, n) for r, n in counts.most_common()) or "\u2014"
        lines.append("| `{}` | {}/{} | {} |".format(
            result["notebook"].replace("notebooks/", "", 1), ok, len(result["cells"]), why))
    lines.append("")
    lines.append("{} of {} code cells pass.".format(passing, total))
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=os.environ.get("PYSYFT_REPO", DEFAULT_REPO))
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--report")
    parser.add_argument("--timeout", type=int, default=300)
    parser.add_argument("--propose", help="write the expected failures this run suggests here")
    parser.add_argument("--table", help="write docs/PYSYFT_NOTEBOOKS.md's table for this run here")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.repo):
        print("no PySyft checkout at {} (fetch OpenMined/PySyft, or set PYSYFT_REPO)".format(args.repo))
        return SKIPPED
    expected = json.loads(EXPECTED_PATH.read_text())
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="pysyft-nb-"))
    os.environ["JUPYTER_PATH"] = str(kernel_spec_dir(scratch / "jupyter"))
    results, mismatches = [], []
    try:
        for name in list_notebooks(args.repo, args.only):
            result = run_notebook(args.repo, name, args.timeout, scratch)
            results.append(result)
            bad = compare(result, expected)
            mismatches += bad
            ok = sum(c["status"] == "ok" for c in result["cells"])
            print("{:<75} {:>3}/{:<3} ok {:>6.1f}s{}{}".format(
                name, ok, len(result["cells"]), result["seconds"],
                "  CRASHED " + result["crashed"] if result["crashed"] else "",
                "  MISMATCH {}".format(len(bad)) if bad else ""), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.report:
        pathlib.Path(args.report).write_text(json.dumps(results, indent=1))
    if args.propose:
        pathlib.Path(args.propose).write_text(json.dumps(propose(results, expected), indent=1) + "\n")
    if args.table:
        reasons = propose(results, expected)
        pathlib.Path(args.table).write_text(table(results, reasons))
    for m in mismatches:
        print("mismatch:", m)
    return min(len(mismatches), 100)


if __name__ == "__main__":
    sys.exit(main())
