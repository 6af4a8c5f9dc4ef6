"""Uploads that cannot pile up: Gradio's upload route, reached without any page, holds at most ``CLIENT_CAP_BYTES``
per client at any moment (more is refused with a sentence before it reaches the disk); what no event uses is deleted
after ``UNCLAIMED_S``; the app's own handlers delete what they read, used or refused."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.page import uploads
from app.page.uploads import LEDGER, UploadLedger


@pytest.fixture()
def guard(app_url) -> UploadLedger:
    LEDGER.sweep(older_than_s=-1)  # start from nothing held
    return LEDGER


def _upload(app_url: str, size: int, name: str = "blob.bin") -> httpx.Response:
    files = {"files": (name, b"x" * size)}
    return httpx.post(f"{app_url}gradio_api/upload", files=files, timeout=30)


def test_a_client_past_its_cap_is_refused_before_anything_is_written(app_url, guard, monkeypatch):
    monkeypatch.setattr(uploads, "CLIENT_CAP_BYTES", 3 * 2**20)
    size = 1_200_000
    first, second = _upload(app_url, size, "a.bin"), _upload(app_url, size, "b.bin")
    assert first.status_code == second.status_code == 200
    held = [Path(path) for path in first.json() + second.json()]
    assert all(path.exists() for path in held)
    refused = _upload(app_url, size, "c.bin")
    assert refused.status_code == 413 and "a client may hold 3 MB at a time" in refused.text
    assert guard.holding("127.0.0.1") == 2 * size  # nothing of the third reached the disk
    for path in held:  # used (a handler deletes what it read): room again
        path.unlink()
    assert _upload(app_url, size, "d.bin").status_code == 200


def test_uploads_no_event_used_are_deleted_with_their_folders(app_url, guard):
    (path,) = map(Path, _upload(app_url, 1000).json())
    assert path.exists() and guard.sweep() == 0  # not yet a minute old
    assert guard.sweep(older_than_s=-1) >= 1
    assert not path.exists() and not path.parent.exists()


def test_a_broken_off_upload_leaves_nothing_behind(app_url, guard, tmp_path):
    partial = guard.folder / "tmp_partial_upload"
    partial.write_bytes(b"half")
    assert guard.sweep(older_than_s=-1) >= 1 and not partial.exists()
