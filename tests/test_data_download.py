"""Downloads against a loopback HTTP server serving a zip built here; never the internet.

Also ``recgym data download``: local data first, ``--data-dir``, and errors in CLI terms.
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest

from recgym.cli import main
from recgym.data import catalog, download, generate, load_movielens, write_movielens
from recgym.errors import ChecksumError, DatasetNotFoundError, DownloadError


class _Handler(http.server.BaseHTTPRequestHandler):
    payload: bytes = b""
    mode: str = "ok"  # ok | drop | an HTTP status code to answer with
    hits: int = 0

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).hits += 1
        body = self.payload
        if self.mode.isdigit():
            self.send_error(int(self.mode))
            return
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
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
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


@pytest.fixture
def served_small(server, archive, allow_downloads, fresh_cache, monkeypatch):
    """The loopback server serves a synthetic ml-latest-small.zip whose checksum recgym expects."""
    handler, url = server
    handler.payload = archive
    spec = catalog.MOVIELENS["ml-latest-small"]
    fake = catalog.MovieLensSpec(
        **{**spec.__dict__, "sha256": hashlib.sha256(archive).hexdigest(), "size": len(archive)}
    )
    monkeypatch.setitem(catalog.MOVIELENS, "ml-latest-small", fake)
    monkeypatch.setenv("RECGYM_MIRROR", url)
    return handler


def test_load_movielens_downloads_into_the_cache(served_small, archive, fresh_cache, monkeypatch):
    monkeypatch.delenv("RECGYM_DATA_DIR", raising=False)
    ds = load_movielens("ml-latest-small", progress=False)
    assert ds.n_ratings == 600
    assert (fresh_cache / "ml-latest-small.zip").read_bytes() == archive


def test_real_checksum_rejects_a_different_archive(
    allow_downloads, server, archive, fresh_cache, monkeypatch
):
    handler, url = server
    handler.payload = archive  # not the published ml-latest-small.zip
    monkeypatch.setenv("RECGYM_MIRROR", url)
    monkeypatch.delenv("RECGYM_DATA_DIR", raising=False)
    with pytest.raises(ChecksumError):
        load_movielens("ml-latest-small", progress=False)
    assert not (fresh_cache / "ml-latest-small.zip").exists()


def test_offline_error_says_where_it_looked(allow_downloads, fresh_cache, monkeypatch, tmp_path):
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


# ------------------------------------------------------------ what is retried, what is not
@pytest.fixture
def no_sleep(monkeypatch):
    """Record the back-off waits instead of sleeping."""
    import recgym.data.fetch as dl

    waits: list[float] = []
    monkeypatch.setattr(dl.time, "sleep", waits.append)
    return waits


@pytest.fixture
def dns_down(monkeypatch):
    """Every host name fails to resolve, as on an offline machine (nothing leaves the box)."""
    lookups: list[str] = []

    def fail(host, *args, **kwargs):
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    return lookups


def test_name_resolution_failure_is_not_retried(dns_down, no_sleep, tmp_path):
    with pytest.raises(DownloadError, match="'files.example.invalid' does not resolve"):
        download("http://files.example.invalid/x.zip", tmp_path / "x.zip", sha256="0" * 64)
    assert dns_down == ["files.example.invalid"]  # one attempt
    assert no_sleep == []  # and no back-off waits


@pytest.mark.parametrize(("status", "attempts"), [("404", 1), ("403", 1), ("503", 3), ("429", 3)])
def test_http_errors_retried_only_when_transient(server, no_sleep, tmp_path, status, attempts):
    handler, url = server
    handler.mode = status
    with pytest.raises(DownloadError, match=status):
        download(f"{url}/x.zip", tmp_path / "x.zip", sha256="0" * 64, retries=2)
    assert handler.hits == attempts
    assert len(no_sleep) == attempts - 1


def test_recgym_offline_forbids_downloads(server, archive, fresh_cache, monkeypatch, tmp_path):
    handler, url = server
    handler.payload = archive
    monkeypatch.setenv("RECGYM_MIRROR", url)
    monkeypatch.setenv("RECGYM_OFFLINE", "1")
    monkeypatch.setenv("RECGYM_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="RECGYM_OFFLINE"):
        load_movielens("ml-latest-small", progress=False)
    assert handler.hits == 0


# ------------------------------------------------------------------ recgym data download
@pytest.mark.parametrize("where", ["RECGYM_DATA_DIR", "--data-dir"])
def test_cli_download_finds_local_data_first(served_small, tmp_path, monkeypatch, capsys, where):
    local = tmp_path / "local"
    write_movielens(local, "ml-latest-small", n_users=20, n_items=100, n_ratings=500)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("RECGYM_DATA_DIR", str(local if where == "RECGYM_DATA_DIR" else empty))
    extra = ["--data-dir", str(local)] if where == "--data-dir" else []
    assert main(["data", "download", "ml-latest-small", *extra]) == 0
    out = capsys.readouterr().out
    assert f"found {local / 'ml-latest-small'}" in out and "500 ratings" in out
    assert served_small.hits == 0  # no network


def test_cli_download_goes_into_data_dir(served_small, fresh_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECGYM_DATA_DIR", str(tmp_path / "nothing-here"))
    target = tmp_path / "mine"
    assert main(["data", "download", "ml-latest-small", "--data-dir", str(target)]) == 0
    assert served_small.hits == 1
    assert (target / "ml-latest-small.zip").is_file()
    assert not (fresh_cache / "ml-latest-small.zip").exists()
    assert "600 ratings" in capsys.readouterr().out


def test_cli_download_offline_fails_fast_in_cli_terms(
    allow_downloads, dns_down, no_sleep, fresh_cache, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("RECGYM_MIRROR", "http://files.example.invalid/")
    monkeypatch.setenv("RECGYM_DATA_DIR", str(tmp_path))
    assert main(["data", "download", "ml-1m"]) == 1
    err = capsys.readouterr().err
    assert "does not resolve" in err and "--data-dir" in err and "RECGYM_DATA_DIR" in err
    assert "data_dir=" not in err and "Traceback" not in err
    assert no_sleep == []


def test_cli_info_without_download_speaks_cli(fresh_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECGYM_DATA_DIR", str(tmp_path))
    assert main(["data", "info", "ml-1m", "--no-download"]) == 1
    err = capsys.readouterr().err
    assert "recgym data download ml-1m" in err and "--data-dir" in err
    assert "data_dir=" not in err and "download=False" not in err
