"""Parsers for the native MovieLens file formats, from a folder or straight from the zip.

Everything is parsed by :mod:`pyarrow.csv` (multi-threaded C++), never by a Python loop. The
``::``-separated ``.dat`` files are turned into tab-separated text with one ``bytes.replace``
first, since Arrow's CSV reader takes one-character delimiters only.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from recgym.data.catalog import MovieLensSpec
from recgym.errors import DataFormatError

RATING_COLUMNS = ("user", "item", "rating", "timestamp")
_YEAR_RE = r"\((\d{4})(?:[-–]\d{0,4})?\)\s*$"


@dataclass
class RawRatings:
    """Parsed but not yet indexed ratings: one entry per rating, in file order.

    Attributes:
        user: Original user ids, int64.
        item: Original item (movie) ids, int64.
        rating: Ratings, float32.
        timestamp: Unix seconds, int64.
    """

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray


class Source:
    """A dataset's files, either in a folder or inside a zip archive.

    Args:
        path: A folder holding the files, or a ``.zip`` whose members hold them (in any
            sub-folder).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open the folder or archive (the archive's member list is read here)."""
        self.path = Path(path)
        self._members: dict[str, str] | None = None
        if self.is_zip:
            try:
                with zipfile.ZipFile(self.path) as zf:
                    names = zf.namelist()
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataFormatError(
                    f"{str(self.path)!r} is not a readable zip archive ({exc}); it is probably "
                    "truncated. Delete it and download it again."
                ) from exc
            self._members = {Path(n).name: n for n in names if not n.endswith("/")}

    @property
    def is_zip(self) -> bool:
        """Whether the files are read from a zip archive."""
        return self.path.suffix.lower() == ".zip"

    def has(self, name: str) -> bool:
        """Whether the source holds a file called ``name``."""
        if self._members is not None:
            return name in self._members
        return (self.path / name).is_file()

    def describe(self, name: str) -> str:
        """A human-readable location of ``name`` for error messages."""
        if self._members is not None:
            return f"{self._members.get(name, name)} in {self.path}"
        return str(self.path / name)

    def open(self, name: str) -> str | pa.NativeFile:
        """Return something :func:`pyarrow.csv.read_csv` reads: a path, or an in-memory buffer.

        Args:
            name: The file's base name.

        Raises:
            DataFormatError: If the file is missing or the archive member is corrupt.
        """
        if not self.has(name):
            raise DataFormatError(
                f"{self.describe(name)} is missing. Is {str(self.path)!r} a complete copy of the "
                "dataset? Delete it and download again, or point data_dir at a complete copy."
            )
        if self._members is None:
            return str(self.path / name)
        return pa.BufferReader(self.read_bytes(name))

    def read_bytes(self, name: str) -> bytes:
        """Return the whole content of ``name``."""
        if self._members is None:
            return (self.path / name).read_bytes()
        try:
            with zipfile.ZipFile(self.path) as zf:
                return zf.read(self._members[name])
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
            raise DataFormatError(
                f"Cannot read {self.describe(name)} ({exc}): the archive is truncated or corrupt. "
                "Delete it and download it again."
            ) from exc

    def stat_fingerprint(self, names: list[str]) -> list[tuple[str, int, int]]:
        """Return ``(name, size, mtime_ns)`` of the files read (of the archive, if zipped)."""
        paths = [self.path] if self._members is not None else [self.path / n for n in names]
        out = []
        for p in paths:
            if p.exists():
                st = p.stat()
                out.append((p.name, st.st_size, st.st_mtime_ns))
        return out


def read_table(
    source: str | pa.NativeFile,
    *,
    where: str,
    columns: dict[str, tuple[str | int, pa.DataType]],
    delimiter: str = ",",
    header: bool = True,
    encoding: str = "utf8",
    quoting: bool = True,
) -> pa.Table:
    """Parse a delimited text file, keeping and typing the requested columns.

    Args:
        source: Path or Arrow buffer.
        where: Description of the file for error messages.
        columns: Output name -> (column name in the file, or 0-based position when there is no
            header; Arrow type).
        delimiter: One-character field separator.
        header: Whether the first line holds column names.
        encoding: Text encoding.
        quoting: Whether double quotes delimit fields (off for the MovieLens ``.dat``/``u.*``
            files, whose titles contain bare quotes).

    Returns:
        A table whose columns are the keys of ``columns``, in that order.

    Raises:
        DataFormatError: On a missing column, a value that does not convert, or an empty file.
    """
    read_opts = pacsv.ReadOptions(encoding=encoding, autogenerate_column_names=not header)
    parse_opts = pacsv.ParseOptions(delimiter=delimiter, quote_char='"' if quoting else False)
    src_names = [c if header else f"f{c}" for c, _ in columns.values()]
    convert_opts = pacsv.ConvertOptions(
        include_columns=src_names,
        column_types={n: t for n, (_, t) in zip(src_names, columns.values(), strict=True)},
    )
    try:
        table = pacsv.read_csv(
            source, read_options=read_opts, parse_options=parse_opts, convert_options=convert_opts
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        raise _explain_arrow_error(exc, where, source, src_names, header) from None
    return table.rename_columns(list(columns))


def _explain_arrow_error(
    exc: Exception, where: str, source: object, wanted: list[str], header: bool
) -> DataFormatError:
    msg = str(exc)
    if "Empty CSV file" in msg or "no columns" in msg.lower():
        return DataFormatError(f"{where} is empty. Supply a file with a header and ratings.")
    if "include_columns" in msg and "does not exist" in msg:
        found = _header_of(source) if header else []
        missing = [c for c in wanted if c not in found] if found else wanted
        return DataFormatError(
            f"{where} has no column(s) {missing}; its columns are {found}. "
            "Pass the column names with user_col=, item_col=, rating_col=, timestamp_col=."
        )
    if "conversion error" in msg.lower() or "invalid value" in msg.lower():
        return DataFormatError(
            f"{where} holds a value that is not a number where one is required: {msg}. "
            "Fix or remove that row (ratings, ids and timestamps must be numeric)."
        )
    if "Expected" in msg and "columns" in msg:
        return DataFormatError(f"{where} has a row with the wrong number of fields: {msg}.")
    return DataFormatError(f"Cannot parse {where}: {msg}")


def _header_of(source: object) -> list[str]:
    try:
        if isinstance(source, str):
            with open(source, "rb") as fh:
                line = fh.readline()
        else:
            source.seek(0)  # type: ignore[attr-defined]
            line = source.read(1 << 16).split(b"\n", 1)[0]  # type: ignore[attr-defined]
        return [c.strip().strip('"') for c in line.decode("utf-8", "replace").strip().split(",")]
    except Exception:  # noqa: BLE001 - only used to improve an error message
        return []


def _to_raw(table: pa.Table) -> RawRatings:
    cols = {}
    for name in RATING_COLUMNS:
        col = table.column(name)
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataFormatError(
                f"Column {name!r} has {col.null_count} missing value(s) (first at data row "
                f"{row + 1}). Fill or drop those rows."
            )
        cols[name] = col.to_numpy()
    return RawRatings(cols["user"], cols["item"], cols["rating"], cols["timestamp"])


_INT = pa.int64()
_RATING_TYPES = {"user": _INT, "item": _INT, "rating": pa.float32(), "timestamp": _INT}


def read_ratings(spec: MovieLensSpec, source: Source) -> RawRatings:
    """Read the ratings file of a MovieLens variant in its native format.

    Args:
        spec: The variant.
        source: Its folder or zip.

    Returns:
        The ratings in file order.
    """
    name = spec.ratings_file
    where = source.describe(name)
    types = list(_RATING_TYPES.items())
    if spec.layout == "csv":
        cols = {
            k: (c, t)
            for (k, t), c in zip(types, ["userId", "movieId", "rating", "timestamp"], strict=True)
        }
        table = read_table(source.open(name), where=where, columns=cols)
    elif spec.layout == "dat":
        data = source.read_bytes(name).replace(b"::", b"\t")
        cols = {k: (i, t) for i, (k, t) in enumerate(types)}
        table = read_table(
            pa.BufferReader(data), where=where, columns=cols, delimiter="\t", header=False
        )
    else:  # 100k
        cols = {k: (i, t) for i, (k, t) in enumerate(types)}
        table = read_table(
            source.open(name), where=where, columns=cols, delimiter="\t", header=False
        )
    return _to_raw(table)


def read_movies(spec: MovieLensSpec, source: Source) -> pd.DataFrame:
    """Read the movies file of a MovieLens variant.

    Args:
        spec: The variant.
        source: Its folder or zip.

    Returns:
        A frame with columns ``movieId`` (int64), ``title`` (without the year), ``year``
        (nullable Int64) and ``genres`` (``|``-separated, ``""`` when none are listed).
    """
    name = spec.movies_file
    where = source.describe(name)
    s = pa.string()
    if spec.layout == "csv":
        cols = {"movieId": ("movieId", _INT), "title": ("title", s), "genres": ("genres", s)}
        df = read_table(source.open(name), where=where, columns=cols).to_pandas()
    elif spec.layout == "dat":
        data = source.read_bytes(name).replace(b"::", b"\x1f")
        cols = {"movieId": (0, _INT), "title": (1, s), "genres": (2, s)}
        df = read_table(
            pa.BufferReader(data),
            where=where,
            columns=cols,
            delimiter="\x1f",
            header=False,
            encoding=spec.encoding,
            quoting=False,
        ).to_pandas()
    else:
        df = _read_100k_items(source, where, spec.encoding)
    return finish_movies(df)


def _read_100k_items(source: Source, where: str, encoding: str) -> pd.DataFrame:
    genre_names = ["unknown"] * 19
    if source.has("u.genre"):
        text = source.read_bytes("u.genre").decode(encoding)
        for line in text.splitlines():
            if "|" in line:
                g, i = line.rsplit("|", 1)
                if i.strip().isdigit() and int(i) < 19:
                    genre_names[int(i)] = g
    cols = {"movieId": (0, _INT), "title": (1, pa.string()), "release": (2, pa.string())}
    cols.update({f"g{i}": (5 + i, pa.int8()) for i in range(19)})
    t = read_table(
        source.open("u.item"),
        where=where,
        columns=cols,
        delimiter="|",
        header=False,
        encoding=encoding,
        quoting=False,
    )
    flags = np.stack([t.column(f"g{i}").to_numpy(zero_copy_only=False) for i in range(19)], 1)
    names = np.array(genre_names, dtype=object)
    genres = ["|".join(g for g in names[row.astype(bool)] if g != "unknown") for row in flags]
    df = pd.DataFrame(
        {
            "movieId": t.column("movieId").to_numpy(),
            "title": t.column("title").to_pylist(),
            "genres": genres,
        }
    )
    # Titles carry the year; fall back to the release date ("01-Jan-1995") where one lacks it.
    release_year = pd.Series(t.column("release").to_pylist()).str.extract(r"(\d{4})\s*$")[0]
    df["_release_year"] = pd.to_numeric(release_year, errors="coerce").astype("Int64")
    return df


def finish_movies(df: pd.DataFrame) -> pd.DataFrame:
    """Split the year out of titles and normalise genres into the canonical item-table columns.

    Args:
        df: A frame with ``movieId``, ``title`` and ``genres`` columns.

    Returns:
        The frame with ``movieId``, ``title``, ``year``, ``genres``, sorted by ``movieId``.
    """
    title = df["title"].fillna("").astype(str).str.strip()
    year = pd.to_numeric(title.str.extract(_YEAR_RE)[0], errors="coerce").astype("Int64")
    if "_release_year" in df:
        year = year.fillna(df["_release_year"])
    clean = title.str.replace(_YEAR_RE, "", regex=True).str.strip()
    # ml-1m/ml-10m write "Matrix, The" for "The Matrix"; keep titles as published.
    genres = df["genres"].fillna("").astype(str).replace("(no genres listed)", "")
    out = pd.DataFrame(
        {"movieId": df["movieId"].astype("int64"), "title": clean, "year": year, "genres": genres}
    )
    if out["movieId"].duplicated().any():
        dup = out.loc[out["movieId"].duplicated(), "movieId"].iloc[0]
        raise DataFormatError(f"The movies file lists movieId {dup} more than once.")
    return out.sort_values("movieId", kind="stable").reset_index(drop=True)


def read_user_table(
    path: Path,
    *,
    columns: dict[str, str | None],
    sep: str | None,
) -> pa.Table:
    """Read a user's own ratings file (CSV/TSV or Parquet) into the four rating columns.

    Args:
        path: The file.
        columns: Output name (``user``, ``item``, ``rating``, ``timestamp``) -> column name in
            the file; ``timestamp`` may map to ``None`` (file order is then time order).
        sep: Field separator for text files; ``None`` guesses from the extension (tab for
            ``.tsv``/``.tab``, else comma).

    Returns:
        A table with the four columns (timestamp filled with row numbers when absent).
    """
    where = str(path)
    wanted = {k: v for k, v in columns.items() if v is not None}
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataFormatError(f"{where} is not a readable Parquet file: {exc}") from exc
        missing = [c for c in wanted.values() if c not in schema.names]
        if missing:
            raise DataFormatError(
                f"{where} has no column(s) {missing}; its columns are {schema.names}. "
                "Pass the column names with user_col=, item_col=, rating_col=, timestamp_col=."
            )
        raw = pq.read_table(path, columns=list(wanted.values()))
        table = raw.rename_columns(list(wanted))
        try:
            table = table.cast(pa.schema([(k, _RATING_TYPES[k]) for k in wanted]))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataFormatError(
                f"{where}: a column does not convert to a number ({exc}). Ratings, ids and "
                "timestamps must be numeric."
            ) from None
    else:
        if path.stat().st_size == 0:
            raise DataFormatError(f"{where} is empty. Supply a file with a header and ratings.")
        delimiter = sep or ("\t" if path.suffix.lower() in (".tsv", ".tab") else ",")
        table = read_table(
            str(path),
            where=where,
            columns={k: (c, _RATING_TYPES[k]) for k, c in wanted.items()},
            delimiter=delimiter,
        )
    if table.num_rows == 0:
        raise DataFormatError(f"{where} has a header but no ratings.")
    if "timestamp" not in wanted:
        table = table.append_column("timestamp", pa.array(np.arange(table.num_rows)))
    return table.select(list(RATING_COLUMNS))


def read_user_movies(path: Path) -> pd.DataFrame:
    """Read a user's own movies file in the ``movies.csv`` layout (movieId, title, genres)."""
    cols = {"movieId": ("movieId", _INT), "title": ("title", pa.string())}
    header = _header_of(str(path))
    if "genres" in header:
        cols["genres"] = ("genres", pa.string())
    df = read_table(str(path), where=str(path), columns=cols).to_pandas()
    if "genres" not in df:
        df["genres"] = ""
    return finish_movies(df)


def raw_from_table(table: pa.Table) -> RawRatings:
    """Convert a table with the four rating columns into :class:`RawRatings`, checking nulls."""
    return _to_raw(table)


__all__ = [
    "RawRatings",
    "Source",
    "read_ratings",
    "read_movies",
    "read_user_table",
    "read_user_movies",
    "finish_movies",
    "raw_from_table",
]
