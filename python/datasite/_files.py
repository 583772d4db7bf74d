"""Free-standing files a data owner uploads (PySyft's ``client.upload_files``): each becomes a blob
on the server, readable by its uploader only, and answers a ``BlobFile``.
"""

import io
import os
import pathlib

from . import _transfer
from ._action import ActionObject


class BlobFile:
    """A file uploaded with ``client.upload_files``: ``read()`` its bytes, ``iter_lines()`` its
    lines. Only its uploader can read it; blobs no dataset uses are deleted by the server after
    24 hours.
    """

    def __init__(self, blob, file_name, client):
        self.id = blob.get("id")
        self.file_name = file_name
        self.size = blob.get("size")
        self.sha256 = blob.get("sha256")
        self._client = client

    @property
    def syft_action_data(self):
        return self

    def read(self):
        """The file's bytes, downloaded from the server (checked against its SHA-256)."""
        buffer = io.BytesIO()
        _transfer.download(
            self._client._transport,
            "blob_get",
            {"id": self.id},
            buffer,
            label="Downloading " + self.file_name,
        )
        return buffer.getvalue()

    def iter_lines(self, keepends=False):
        """The file's lines, as bytes."""
        return iter(self.read().splitlines(keepends))

    def __repr__(self):
        return "<BlobFile: {} ({} bytes, {})>".format(self.file_name, self.size, self.id)


def _files_of(paths):
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = []
    for p in paths:
        path = pathlib.Path(os.fspath(p))
        if path.is_dir():
            out.extend(sorted(f for f in path.rglob("*") if f.is_file()))
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError("no file or folder at {!r}".format(str(path)))
    if not out:
        raise ValueError("upload_files found no file to upload")
    return out


def upload_files(client, paths):
    """Uploads files (a path, a list of paths, or a folder's files) as blobs; answers an
    ``ActionObject`` of a list of ``BlobFile``s, one per file, in order.
    """
    from .datasets import _require_uploader

    _require_uploader(client, "upload files")
    uploaded = []
    for path in _files_of(paths):
        payload = _transfer.Payload("raw", path=str(path), origin="file " + str(path))
        blob = _transfer.upload(client._transport, payload, label="Uploading " + path.name)
        uploaded.append(ActionObject(BlobFile(blob, path.name, client)))
    return ActionObject(uploaded)
