"""Synthetic MovieLens-like data at any scale, written in any native MovieLens format.

The generator is a seeded latent-factor user model:

* Items belong to taste clusters, each mapped to one or more MovieLens genres, and have a
  Zipf-like popularity (``weight ~ 1 / (rank + 10)``), a release year and a latent vector near
  their cluster's centre.
* Users have a favourite cluster and a latent vector near it. Each user rates
  ``20 + extra`` items (``extra`` log-normally spread, so every user has at least 20 ratings and
  a few have thousands); 60% of picks follow global popularity, 40% popularity within the
  favourite cluster.
* A rating's score is ``user . item + item quality + user bias + noise``; scores are mapped by
  quantiles onto the rating distribution of ml-latest-small (half stars) or ml-100k (whole
  stars), so rating frequencies match the real data.
* Each user rates in time order of the items' release years (plus noise), in bursts: about
  a quarter of ratings share their second with another, as in ml-latest-small (23%).

Tests and scale benchmarks use it through :func:`write_movielens` (files in the native format
of any variant, read back by :func:`recgym.data.load_movielens`) or :func:`synthetic_dataset`
(in memory).
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from recgym.data.catalog import get_spec
from recgym.data.dataset import Dataset, build_dataset
from recgym.data.readers import RawRatings, finish_movies
from recgym.errors import ConfigError
from recgym.seeding import RNGLike, as_generator

GENRES = [
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
]  # fmt: skip
# Rating frequencies measured on ml-latest-small (half stars) and ml-100k (whole stars).
HALF_STAR_LEVELS = np.arange(0.5, 5.01, 0.5)
HALF_STAR_FREQ = np.array(
    [0.0136, 0.0279, 0.0178, 0.0749, 0.055, 0.1988, 0.1303, 0.266, 0.0848, 0.131]
)
WHOLE_STAR_LEVELS = np.arange(1.0, 5.01, 1.0)
WHOLE_STAR_FREQ = np.array([0.0611, 0.1137, 0.2715, 0.3417, 0.2120])
_EPOCH_2000 = 946_684_800
_EPOCH_2018 = 1_514_764_800


@dataclass
class SyntheticData:
    """Generated ratings (file order: by user id, then movie id) and the movies table.

    Attributes:
        ratings: Frame with ``userId, movieId, rating, timestamp``.
        movies: Frame with ``movieId, title`` (with ``(year)``), ``genres``.
    """

    ratings: pd.DataFrame
    movies: pd.DataFrame


def generate(
    n_users: int = 600,
    n_items: int = 2000,
    n_ratings: int = 60_000,
    *,
    rng: RNGLike = 0,
    n_factors: int = 16,
    n_clusters: int = 12,
    half_stars: bool = True,
) -> SyntheticData:
    """Generate a synthetic MovieLens-like dataset.

    Args:
        n_users: Number of users (each gets at least 20 ratings).
        n_items: Number of movies listed; a few may get no rating, as in MovieLens.
        n_ratings: Total number of ratings (at least ``20 * n_users``).
        rng: Seed or generator.
        n_factors: Dimension of the latent taste vectors.
        n_clusters: Number of taste clusters.
        half_stars: Ratings 0.5-5 in half stars (ml-latest, 10m, 20m+), else 1-5 (100k, 1m).

    Returns:
        Ratings and movies.

    Raises:
        ConfigError: If the sizes are impossible (fewer than 20 ratings per user, or more
            ratings per user than half the catalogue allows).

    Examples:
        >>> data = generate(n_users=30, n_items=200, n_ratings=1000, rng=0)
        >>> len(data.ratings), int(data.ratings.groupby("userId").size().min()) >= 20
        (1000, True)
    """
    if n_users < 1 or n_items < 40:
        raise ConfigError(f"Need n_users >= 1 and n_items >= 40; got {n_users}, {n_items}.")
    if n_ratings < 20 * n_users:
        raise ConfigError(
            f"n_ratings={n_ratings} is below 20 per user (n_users={n_users}); MovieLens users "
            f"have at least 20 ratings. Use n_ratings >= {20 * n_users}."
        )
    cap = n_items // 2
    if n_ratings > n_users * cap:
        raise ConfigError(
            f"n_ratings={n_ratings} is too many for {n_users} users over {n_items} items (at "
            f"most {cap} per user, {n_users * cap} in all)."
        )
    gen = as_generator(rng)
    centres = gen.normal(0, 1, (n_clusters, n_factors))
    cluster_genres = [
        gen.choice(len(GENRES), size=gen.integers(1, 4), replace=False) for _ in range(n_clusters)
    ]

    # Items: cluster, popularity, year, latent vector, quality.
    item_cluster = gen.integers(0, n_clusters, n_items)
    popularity = 1.0 / (gen.permutation(n_items) + 10.0)
    popularity /= popularity.sum()
    year = np.clip(np.round(2018 - gen.gamma(2.0, 9.0, n_items)), 1915, 2018).astype(int)
    item_vec = centres[item_cluster] + gen.normal(0, 0.7, (n_items, n_factors))
    quality = gen.normal(0, 0.6, n_items) + 0.3 * np.log(popularity * n_items)

    # Users: favourite cluster, latent vector, bias, number of ratings.
    user_cluster = gen.integers(0, n_clusters, n_users)
    user_vec = centres[user_cluster] + gen.normal(0, 0.7, (n_users, n_factors))
    user_bias = gen.normal(0, 0.5, n_users)
    counts = _ratings_per_user(gen, n_users, n_ratings, cap)

    items = _pick_items(gen, counts, popularity, item_cluster, user_cluster, n_clusters)
    users = np.repeat(np.arange(n_users), counts)

    score = np.einsum("ij,ij->i", user_vec[users], item_vec[items]) / np.sqrt(n_factors)
    score += quality[items] + user_bias[users] + gen.normal(0, 0.8, len(items))
    levels, freq = (
        (HALF_STAR_LEVELS, HALF_STAR_FREQ) if half_stars else (WHOLE_STAR_LEVELS, WHOLE_STAR_FREQ)
    )
    cuts = np.quantile(score, np.cumsum(freq / freq.sum())[:-1])
    rating = levels[np.searchsorted(cuts, score)].astype(np.float32)

    timestamps = _timestamps(gen, users, counts, year[items])

    # Sparse movieIds with gaps, like MovieLens; userIds 1..n.
    movie_ids = np.sort(gen.choice(np.arange(1, 3 * n_items + 1), n_items, replace=False))
    ratings = pd.DataFrame(
        {
            "userId": users + 1,
            "movieId": movie_ids[items],
            "rating": rating,
            "timestamp": timestamps,
        }
    )
    file_order = np.argsort((users.astype(np.int64) << 32) | movie_ids[items], kind="stable")
    ratings = ratings.iloc[file_order].reset_index(drop=True)
    movies = pd.DataFrame(
        {
            "movieId": movie_ids,
            "title": [
                _title(i, m, y) for i, (m, y) in enumerate(zip(movie_ids, year, strict=True))
            ],
            "genres": [
                "|".join(GENRES[g] for g in sorted(cluster_genres[c])) for c in item_cluster
            ],
        }
    )
    movies.loc[movies.index % 97 == 5, "genres"] = "(no genres listed)"
    return SyntheticData(ratings=ratings, movies=movies)


def _title(i: int, movie_id: int, year: int) -> str:
    # Exercise the awkward cases of real titles: commas, quotes, non-ASCII letters.
    if i % 7 == 3:
        return f"Synthetic Movie {movie_id}, The ({year})"
    if i % 11 == 4:
        return f'"Quoted" Picture {movie_id} ({year})'
    if i % 13 == 6:
        return f"Amélie's Café {movie_id} ({year})"
    return f"Synthetic Movie {movie_id} ({year})"


def _ratings_per_user(gen: np.random.Generator, n_users: int, n_ratings: int, cap: int):
    weights = gen.lognormal(0.0, 1.1, n_users)
    extra = gen.multinomial(n_ratings - 20 * n_users, weights / weights.sum())
    counts = 20 + extra
    while (over := counts - cap).max() > 0:  # move overflow to users below the cap
        spill = int(over[over > 0].sum())
        counts = np.minimum(counts, cap)
        room = cap - counts
        counts += gen.multinomial(spill, room / room.sum())
    return counts.astype(np.int64)


def _pick_items(
    gen: np.random.Generator,
    counts: np.ndarray,
    popularity: np.ndarray,
    item_cluster: np.ndarray,
    user_cluster: np.ndarray,
    n_clusters: int,
) -> np.ndarray:
    """Draw ``counts[u]`` distinct items per user, grouped by user, in random order."""
    n_items = len(popularity)
    global_cdf = np.cumsum(popularity)
    by_cluster = np.argsort(item_cluster, kind="stable")
    cluster_of_sorted = item_cluster[by_cluster]
    w = popularity[by_cluster]
    cluster_tot = np.bincount(cluster_of_sorted, weights=w, minlength=n_clusters)
    within = np.cumsum(w) - np.concatenate([[0], np.cumsum(cluster_tot)[:-1]])[cluster_of_sorted]
    cluster_cdf = cluster_of_sorted + within / cluster_tot[cluster_of_sorted]

    done_users: list[np.ndarray] = []
    done_items: list[np.ndarray] = []
    cur_users = np.empty(0, np.int64)  # picks so far of users still short of their count
    cur_items = np.empty(0, np.int64)
    active = np.arange(len(counts))
    finished = np.zeros(len(counts), dtype=bool)
    for round_ in range(60):
        have = np.bincount(cur_users, minlength=len(counts))[active]
        draws = np.repeat(active, ((counts[active] - have) * 1.3 + 4).astype(np.int64))
        u = gen.random(len(draws))
        if round_ < 40:
            from_cluster = gen.random(len(draws)) < 0.4
            items = np.minimum(np.searchsorted(global_cdf, u * global_cdf[-1]), n_items - 1)
            pos = np.searchsorted(cluster_cdf, user_cluster[draws[from_cluster]] + u[from_cluster])
            items[from_cluster] = by_cluster[np.minimum(pos, n_items - 1)]
        else:  # late rounds: uniform draws finish heavy users quickly
            items = gen.integers(0, n_items, len(draws))
        users = np.concatenate([cur_users, draws])
        items = np.concatenate([cur_items, items])
        first = ~pd.Series(users * n_items + items).duplicated().to_numpy()
        users, items = users[first], items[first]
        order = np.argsort(users, kind="stable")  # group by user, keep draw order
        users, items = users[order], items[order]
        rank = np.arange(len(users)) - np.searchsorted(users, users)
        keep = rank < counts[users]
        users, items = users[keep], items[keep]
        complete = np.bincount(users, minlength=len(counts)) == counts
        fin = complete[users]
        done_users.append(users[fin])
        done_items.append(items[fin])
        cur_users, cur_items = users[~fin], items[~fin]
        finished |= complete
        active = np.flatnonzero(~finished)
        if len(active) == 0:
            break
    else:  # pragma: no cover - 60 rounds always suffice below the cap
        raise RuntimeError("synthetic item sampling did not converge")
    users = np.concatenate(done_users)
    items = np.concatenate(done_items)
    return items[np.argsort(users, kind="stable")]


def _timestamps(
    gen: np.random.Generator, users: np.ndarray, counts: np.ndarray, item_year: np.ndarray
) -> np.ndarray:
    """Per user: order by noisy release year, then bursts of ratings with shared seconds."""
    n = len(users)
    key = users * 10_000.0 + (item_year + gen.normal(0, 12, n)).clip(1800, 2100)
    order = np.argsort(key, kind="stable")
    same_second = gen.random(n) < 0.13
    later = np.where(gen.random(n) < 0.7, gen.exponential(90, n), gen.exponential(4 * 86400, n))
    gaps = np.where(same_second, 0, 1 + later.astype(np.int64))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    cum = np.cumsum(gaps)
    cum -= np.repeat(cum[starts], counts)
    t0 = gen.integers(_EPOCH_2000, _EPOCH_2018 - 5 * 365 * 86400, len(counts))
    ts = np.empty(n, dtype=np.int64)
    ts[order] = np.repeat(t0, counts) + cum
    return ts


def synthetic_dataset(
    n_users: int = 600,
    n_items: int = 2000,
    n_ratings: int = 60_000,
    *,
    rng: int = 0,
    half_stars: bool = True,
    tie_seed: int = 0,
) -> Dataset:
    """Generate synthetic data straight into a :class:`Dataset` (no files).

    Args:
        n_users: Number of users.
        n_items: Number of movies.
        n_ratings: Number of ratings.
        rng: Integer seed (part of the dataset's fingerprint, so caches stay valid).
        half_stars: Half-star (0.5-5) or whole-star (1-5) ratings.
        tie_seed: Seed of the tie-breaking hash.

    Returns:
        The dataset, named ``"synthetic"``.
    """
    data = generate(n_users, n_items, n_ratings, rng=rng, half_stars=half_stars)
    r = data.ratings
    raw = RawRatings(
        r["userId"].to_numpy(np.int64),
        r["movieId"].to_numpy(np.int64),
        r["rating"].to_numpy(np.float32),
        r["timestamp"].to_numpy(np.int64),
    )
    scale = (0.5, 5.0) if half_stars else (1.0, 5.0)
    return build_dataset(
        raw,
        finish_movies(data.movies),
        name="synthetic",
        rating_range=scale,
        tie_seed=tie_seed,
        fingerprint=f"synthetic-{n_users}-{n_items}-{n_ratings}-{rng}-{half_stars}",
    )


# ============================================================================= writers
def write_movielens(
    directory: str | os.PathLike[str],
    name: str = "ml-latest-small",
    *,
    n_users: int = 600,
    n_items: int = 2000,
    n_ratings: int = 60_000,
    rng: RNGLike = 0,
    zipped: bool = False,
    data: SyntheticData | None = None,
) -> Path:
    """Write synthetic data in the native format of a MovieLens variant.

    The files land where :func:`recgym.data.load_movielens` looks: ``directory/<folder>/``
    (``ml-10M100K`` for ml-10m), or ``directory/<name>.zip`` with that folder inside.

    Args:
        directory: Where to write.
        name: Which variant's format to mimic (``ml-latest-small``, ``ml-100k``, ``ml-1m``,
            ``ml-10m``, ``ml-20m``, ``ml-25m``, ``ml-32m``).
        n_users: Number of users.
        n_items: Number of movies.
        n_ratings: Number of ratings.
        rng: Seed or generator.
        zipped: Write the zip archive instead of the folder.
        data: Write this data instead of generating it.

    Returns:
        The folder or zip written.
    """
    spec = get_spec(name)
    if data is None:
        data = generate(
            n_users, n_items, n_ratings, rng=rng, half_stars=spec.rating_range[0] == 0.5
        )
    files = _render(spec.layout, data, spec.encoding)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if zipped:
        out = directory / spec.zip_name
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for fname, payload in files.items():
                zf.writestr(f"{spec.folder}/{fname}", payload)
        return out
    out = directory / spec.folder
    out.mkdir(exist_ok=True)
    for fname, payload in files.items():
        (out / fname).write_bytes(payload)
    return out


def _csv_bytes(table: pa.Table, *, header: bool = True, delimiter: str = ",") -> bytes:
    """Numeric tables, unquoted (as MovieLens writes them)."""
    sink = pa.BufferOutputStream()
    opts = pacsv.WriteOptions(include_header=False, delimiter=delimiter, quoting_style="none")
    pacsv.write_csv(table, sink, opts)
    head = (delimiter.join(table.column_names) + "\n").encode() if header else b""
    return head + sink.getvalue().to_pybytes()


def _movies_csv(movies: pd.DataFrame) -> bytes:
    """movies.csv as GroupLens writes it: only fields with commas or quotes are quoted."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(
        [("movieId", "title", "genres"), *movies[["movieId", "title", "genres"]].itertuples(False)]
    )
    return out.getvalue().encode()


def _rating_strings(rating: np.ndarray, whole: bool) -> pa.Array:
    # Dictionary-encode: 10 distinct strings ("4.0", "3.5") instead of 20M float formats.
    levels = np.unique(rating)
    text = [str(int(v)) if whole else f"{v:.1f}" for v in levels]
    return pa.DictionaryArray.from_arrays(
        pa.array(np.searchsorted(levels, rating).astype(np.int8)), pa.array(text)
    ).cast(pa.string())


def _render(layout: str, data: SyntheticData, encoding: str) -> dict[str, bytes]:
    r, m = data.ratings, data.movies
    whole = layout != "csv" and bool(np.all(r["rating"] % 1 == 0))
    rating_table = pa.table(
        {
            "userId": pa.array(r["userId"].to_numpy()),
            "movieId": pa.array(r["movieId"].to_numpy()),
            "rating": _rating_strings(r["rating"].to_numpy(), whole),
            "timestamp": pa.array(r["timestamp"].to_numpy()),
        }
    )
    if layout == "csv":
        return {"ratings.csv": _csv_bytes(rating_table), "movies.csv": _movies_csv(m)}
    if layout == "dat":
        body = _csv_bytes(rating_table, header=False, delimiter="\t").replace(b"\t", b"::")
        lines = [
            f"{i}::{t}::{g}" for i, t, g in zip(m["movieId"], m["title"], m["genres"], strict=True)
        ]
        return {
            "ratings.dat": body,
            "movies.dat": ("\n".join(lines) + "\n").encode(encoding),
        }
    # ml-100k: u.data (tab), u.item (pipe, genre flags), u.genre
    body = _csv_bytes(rating_table, header=False, delimiter="\t")
    genre_names = ["unknown", *GENRES]
    item_lines = []
    for i, t, g in zip(m["movieId"], m["title"], m["genres"], strict=True):
        flags = ["0"] * 19
        for x in g.split("|"):
            if x in genre_names:
                flags[genre_names.index(x)] = "1"
        if g == "(no genres listed)":
            flags[0] = "1"
        year = t[-5:-1]
        item_lines.append(
            f"{i}|{t}|01-Jan-{year}||http://us.imdb.com/M/title-exact?{i}|" + "|".join(flags)
        )
    genre_text = "".join(f"{g}|{i}\n" for i, g in enumerate(genre_names)) + "\n"
    return {
        "u.data": body,
        "u.item": ("\n".join(item_lines) + "\n").encode(encoding),
        "u.genre": genre_text.encode(encoding),
    }
