"""Downloads against a loopback HTTP server serving a zip built here."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from recgym.data import catalog, download, generate, load_movielens, write_movielens
from recgym.errors import ChecksumError, DatasetNotFoundError, DownloadError


class _Handler(http.server.BaseHTTPRequestHandler):
    payload: bytes = b""
    mode: str = "ok"  # ok | drop
    hits: int = 0

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).hits += 1
        body = self.payload
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.mode == "drop":
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.connection.shutdown(2)  # connection dropped mid-file
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("H", (_Handler,), {"hits": 0})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> bytes:
    d = tmp_path_factory.mktemp("zip")
    data = generate(n_users=20, n_items=100, n_ratings=600, rng=1)
    return write_movielens(d, "ml-latest-small", data=data, zipped=True).read_bytes()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_success_verifies_sha256(server, archive, tmp_path):
    handler, url = server
    handler.payload = archive
    dest = tmp_path / "dl" / "x.zip"
    out = download(f"{url}/x.zip", dest, sha256=hashlib.sha256(archive).hexdigest())
    assert out.read_bytes() == archive
    assert _leftovers(dest.parent) == ["x.zip"]


def test_md5_when_no_sha256(server, archive, tmp_path):
    handler, url = server
    handler.payload = archive
    dest = tmp_path / "x.zip"
    download(f"{url}/x.zip", dest, md5=hashlib.md5(archive).hexdigest())
    assert dest.read_bytes() == archive


def test_checksum_mismatch_deletes_the_file(server, archive, tmp_path):
    handler, url = server
    handler.payload = archive
    dest = tmp_path / "dl" / "x.zip"
    with pytest.raises(ChecksumError, match="expected sha256 0000"):
        download(f"{url}/x.zip", dest, sha256="0" * 64, backoff=0)
    assert _leftovers(dest.parent) == []
    assert handler.hits == 1  # a checksum mismatch is not retried


def test_dropped_connection_retries_then_fails_leaving_nothing(server, archive, tmp_path):
    handler, url = server
    handler.payload, handler.mode = archive, "drop"
    dest = tmp_path / "dl" / "x.zip"
    with pytest.raises(DownloadError, match="after 3 attempts"):
        download(f"{url}/x.zip", dest, sha256="0" * 64, retries=2, backoff=0)
    assert handler.hits == 3
    assert _leftovers(dest.parent) == []


def test_ctrl_c_leaves_no_partial_file(server, archive, tmp_path, monkeypatch):
    handler, url = server
    handler.payload = archive
    import recgym.data.fetch as dl

    def interrupted_update(self, n=1):
        raise KeyboardInterrupt

    monkeypatch.setattr(dl.tqdm, "update", interrupted_update)
    dest = tmp_path / "dl" / "x.zip"
    with pytest.raises(KeyboardInterrupt):
        download(f"{url}/x.zip", dest, sha256=hashlib.sha256(archive).hexdigest())
    assert _leftovers(dest.parent) == []


def test_load_movielens_downloads_into_the_cache(server, archive, fresh_cache, monkeypatch):
    handler, url = server
    handler.payload = archive
    spec = catalog.MOVIELENS["ml-latest-small"]
    fake = catalog.MovieLensSpec(
        **{**spec.__dict__, "sha256": hashlib.sha256(archive).hexdigest(), "size": len(archive)}
    )
    monkeypatch.setitem(catalog.MOVIELENS, "ml-latest-small", fake)
    monkeypatch.setenv("RECGYM_MIRROR", url)
    monkeypatch.delenv("RECGYM_DATA_DIR", raising=False)
    ds = load_movielens("ml-latest-small", progress=False)
    assert ds.n_ratings == 600
    assert (fresh_cache / "ml-latest-small.zip").read_bytes() == archive


def test_real_checksum_rejects_a_different_archive(server, archive, fresh_cache, monkeypatch):
    handler, url = server
    handler.payload = archive  # not the published ml-latest-small.zip
    monkeypatch.setenv("RECGYM_MIRROR", url)
    monkeypatch.delenv("RECGYM_DATA_DIR", raising=False)
    with pytest.raises(ChecksumError):
        load_movielens("ml-latest-small", progress=False)
    assert not (fresh_cache / "ml-latest-small.zip").exists()


def test_offline_error_says_where_it_looked(fresh_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("RECGYM_MIRROR", "http://127.0.0.1:9/")  # nothing listens there
    monkeypatch.setenv("RECGYM_DATA_DIR", str(tmp_path / "nothing-here"))
    import recgym.data.fetch as dl

    monkeypatch.setattr(dl.time, "sleep", lambda s: None)
    with pytest.raises(DatasetNotFoundError) as err:
        load_movielens("ml-1m", progress=False)
    msg = str(err.value)
    assert "nothing-here" in msg and str(fresh_cache) in msg
    assert "data_dir" in msg and "RECGYM_DATA_DIR" in msg


def test_download_false_does_not_touch_the_network(fresh_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("RECGYM_DATA_DIR", str(tmp_path))
    import recgym.data.loaders as loaders

    monkeypatch.setattr(loaders, "download_movielens", lambda *a, **k: pytest.fail("network"))
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        load_movielens("ml-100k", download=False)
