"""A large upload: streamed in constant memory with progress on stderr, stored intact."""

import hashlib
import json
import os
import pathlib
import threading
import time
import tracemalloc

import pytest

import datasite as sy
from dataset_helpers import file_sha256
from helpers import unique

SIZE_MB = 200


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    """A 200 MB file of incompressible bytes and its SHA-256."""
    path = tmp_path_factory.mktemp("big") / "big.bin"
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(SIZE_MB):
            chunk = i.to_bytes(8, "little") + block[8:]
            digest.update(chunk)
            f.write(chunk)
    return path, digest.hexdigest()


def test_large_file_upload_streams_with_progress_and_keeps_its_sha256(
    actors, big_file, capsys, tmp_path
):
    path, expected = big_file
    owner = actors["owner"].client
    ds = sy.Dataset(
        name=unique("large"), asset_list=[sy.Asset(name="blob", data=path, mock=b"tiny mock")]
    )
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = owner.upload_dataset(ds)
        upload_seconds = time.monotonic() - started
        peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert isinstance(result, sy.SyftSuccess)
    assert "\r" in err and "MB/s" in err and "{:.1f} MB".format(SIZE_MB * (1 << 20) / 1e6) in err
    assert peak_mb < 16, "the upload held {:.0f} MB of Python memory".format(peak_mb)

    asset = owner.datasets[ds.name].assets["blob"]
    assert asset.data_size == SIZE_MB << 20
    assert asset.data_sha256 == expected
    started = time.monotonic()
    out = asset.download_data(tmp_path / "back.bin")
    download_seconds = time.monotonic() - started
    assert file_sha256(out) == expected
    print(
        "200 MB: upload {:.1f} s, download {:.1f} s, client peak {:.1f} MB".format(
            upload_seconds, download_seconds, peak_mb
        )
    )


def _server_rss_kb(handle):
    pid = json.loads((pathlib.Path(handle.data_dir) / "server.json").read_text())["pid"]
    for line in pathlib.Path("/proc/{}/status".format(pid)).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS for pid {}".format(pid))


def test_large_download_is_streamed_in_constant_server_memory(
    actors, module_server, big_file, tmp_path
):
    path, expected = big_file
    owner = actors["owner"].client
    ds = sy.Dataset(
        name=unique("rss"), asset_list=[sy.Asset(name="blob", data=path, mock=b"tiny mock")]
    )
    assert isinstance(owner.upload_dataset(ds), sy.SyftSuccess)
    asset = owner.datasets[ds.name].assets["blob"]
    before = _server_rss_kb(module_server)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _server_rss_kb(module_server))
            done.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        out = asset.download_data(tmp_path / "back.bin")
    finally:
        done.set()
        sampler.join()
    assert file_sha256(out) == expected
    grown_mb = (peak[0] - before) / 1024
    # The blob is 200 MB; a streamed answer holds a piece of 1 MiB at a time.
    assert grown_mb < 64, "the server grew by {:.0f} MB sending {} MB".format(grown_mb, SIZE_MB)
