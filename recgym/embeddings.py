"""Item embeddings: the space in which the environment's actions live.

Every method returns a float32 matrix of shape ``(n_items, dim)`` whose rows have unit L2 norm.

Methods:
* ``"svd"`` (default): truncated SVD of the TRAIN split's rating matrix, each rating centred
  by its user's mean rating: ``R_c ~ U S V^T``; an item's vector is its row of
  ``V S^(1/2)``, normalised. Each component's sign is fixed so that its largest entry is
  positive, so results are reproducible. Fitted on train interactions only: nothing a
  validation or test user did can change an embedding.
* ``"implicit"``: truncated SVD of the TRAIN split's binary interaction matrix (who rated what,
  whatever the rating), each user's row scaled by ``1 / sqrt(n_u)`` so heavy users do not
  dominate. Items consumed by the same users get nearby vectors, which suits next-item
  prediction: on ml-latest-small validation users the ``embedding-mean`` baseline scores
  NDCG@10 0.022 with these against 0.009 with ``"svd"`` (``benchmarks/quality.py``).
* ``"sppmi"``: items that follow one another in the TRAIN users' logs get nearby vectors.
  For every train user's time-ordered items, each pair at most ``SPPMI_WINDOW`` (3) steps
  apart counts once in a symmetric co-occurrence matrix ``C``; its positive pointwise mutual
  information, with the context distribution smoothed by the power 0.75,
  ``M_ij = max(0, log(C_ij S / (c_i c_j^0.75)))`` (``c_i`` the row sums of ``C``,
  ``S = sum_k c_k^0.75``), symmetrised, is factorised by its top ``dim`` eigenpairs,
  ``M ~ Q L Q^T``; an item's vector is its row of ``Q L^(1/2)``, normalised (Levy and
  Goldberg, 2014: the matrix word2vec's skip-gram with negative sampling factorises, here
  with items for words and users' logs for sentences). Items that never co-occur are cold.
  Made for next-item prediction: on ml-latest-small's test users the cloned actor of the
  anchored recipe reaches NDCG@10 0.0501 with these against 0.0444 with ``"implicit"``, but
  a lower episode return (2.484 against 2.584): the window sees the next few movies, not
  the rest of the log (32 dimensions, 3 seeds; ``benchmarks/results/ml-latest-small/``).
* ``"genres"``: the item's genre multi-hot vector and standardised release year, centred, then
  mapped to ``dim`` by a seeded Gaussian random projection. Uses no ratings at all.
* ``"random"``: seeded Gaussian vectors (a sanity-check baseline).
* a file (``method="from_file"`` with ``path=``): a ``.npy`` matrix in the dataset's item order
  (or with ``ids=``), an ``.npz`` with ``ids`` and ``vectors`` arrays, or a pickle of
  ``{movieId: vector}`` as RecNN ships (vectors may be NumPy arrays, lists, or torch tensors;
  unpickling runs code, so load only files you trust).

**Cold items** (for ``"svd"``: no train rating, or only ratings equal to their users' means;
for ``"sppmi"``: no positive co-occurrence;
for ``"from_file"``: absent from the file) get a fallback rather than zeros: the mean of the warm
items' vectors weighted by the number of genres shared with the cold item (the mean of all warm
vectors when none is shared), plus seeded noise
of norm 0.05 so no two cold items coincide, then normalised.

Results are cached in ``<cache>/embeddings/`` keyed by the dataset fingerprint, the split, the
method, the dimension and the seed.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh, svds

from recgym.data.dataset import Dataset
from recgym.data.paths import cache_dir, ensure_writable_dir, safe_name
from recgym.data.splits import Split
from recgym.errors import ConfigError, DataFormatError, RecgymWarning, check_choice, check_int
from recgym.files import atomic_write
from recgym.seeding import RNGLike, as_generator, seed_key

METHODS = ("svd", "implicit", "sppmi", "genres", "random", "from_file")
# Behaviour cloning on ml-latest-small's validation users (32-d, seed 0, best epoch) gave
# NDCG@10 0.0489 / 0.0476 / 0.0495 / 0.0461 / 0.0375 with windows 1 / 2 / 3 / 5 / 10 (a one-off
# comparison before this method joined the library; tuning.md compares it with the others).
SPPMI_WINDOW = 3
SPPMI_SMOOTHING = 0.75


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Scale rows to unit L2 norm (rows of zeros stay zero), as float32."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def rating_matrix(dataset: Dataset, train_mask: np.ndarray | None = None) -> sp.csr_matrix:
    """The (users x items) rating matrix of the interactions in ``train_mask`` (CSR, float32).

    Users without a train interaction keep empty rows.
    """
    users = dataset.interaction_users
    items, ratings = dataset.items, dataset.ratings
    if train_mask is not None:
        users, items, ratings = users[train_mask], items[train_mask], ratings[train_mask]
    return sp.csr_matrix(
        (ratings.astype(np.float32), (users, items)), shape=(dataset.n_users, dataset.n_items)
    )


def svd_embeddings(
    dataset: Dataset, dim: int = 32, train_mask: np.ndarray | None = None, rng: RNGLike = 0
) -> np.ndarray:
    """Truncated SVD of the user-mean-centred train rating matrix (see module docstring).

    Args:
        dataset: The dataset.
        dim: Embedding dimension.
        train_mask: Interactions to fit on (``None``: all of them).
        rng: Seed of ARPACK's start vector.

    Returns:
        Unit-norm float32 vectors, ``(n_items, dim)``.

    Raises:
        ConfigError: If ``dim`` is not below the number of train users and items.
    """
    r = rating_matrix(dataset, train_mask)
    r = r[np.diff(r.indptr) > 0]  # train users only: others would be rows of zeros
    counts = np.diff(r.indptr)
    means = np.asarray(r.sum(axis=1)).ravel() / counts
    r = r.astype(np.float64)
    r.data -= np.repeat(means, counts)
    return _truncated_svd_items(dataset, r, dim, rng)


def _truncated_svd_items(dataset: Dataset, r: sp.csr_matrix, dim: int, rng: RNGLike) -> np.ndarray:
    """Item vectors ``V S^(1/2)`` of a truncated SVD of ``r``, normalised and completed.

    Each component's sign is fixed so that its largest entry is positive; cold items get the
    fallback of the module docstring.
    """
    if not 0 < dim < min(r.shape):
        raise ConfigError(
            f"embedding_dim={dim} must be between 1 and {min(r.shape) - 1} for SVD of a "
            f"{r.shape[0]} x {r.shape[1]} train matrix; use a smaller embedding_dim."
        )
    v0 = as_generator(rng).uniform(-1, 1, min(r.shape))
    _, s, vt = svds(r, k=dim, v0=v0, solver="arpack")
    order = np.argsort(-s)
    v = vt[order].T * np.sqrt(np.maximum(s[order], 0.0))
    sign = np.sign(v[np.abs(v).argmax(axis=0), np.arange(dim)])
    v *= np.where(sign == 0, 1.0, sign)
    # Warm = in the train matrix AND a non-zero factor row: an item whose every entry is 0
    # (e.g. each rating equal to its user's mean) has no direction of its own.
    warm = (np.bincount(r.indices, minlength=dataset.n_items) > 0) & (
        np.linalg.norm(v, axis=1) > 1e-9
    )
    return _fill_cold(dataset, normalize_rows(v), warm, rng)


def implicit_embeddings(
    dataset: Dataset, dim: int = 32, train_mask: np.ndarray | None = None, rng: RNGLike = 0
) -> np.ndarray:
    """Truncated SVD of the binary train interactions, users scaled by ``1/sqrt(n_u)``."""
    r = rating_matrix(dataset, train_mask)
    r = r[np.diff(r.indptr) > 0]
    r.data[:] = 1.0
    r = sp.diags(1.0 / np.sqrt(np.diff(r.indptr))) @ r.astype(np.float64)
    return _truncated_svd_items(dataset, sp.csr_matrix(r), dim, rng)


def sppmi_embeddings(
    dataset: Dataset,
    dim: int = 32,
    train_mask: np.ndarray | None = None,
    rng: RNGLike = 0,
    window: int = SPPMI_WINDOW,
) -> np.ndarray:
    """Factorised positive PMI of items consumed close together (see module docstring).

    Args:
        dataset: The dataset.
        dim: Embedding dimension.
        train_mask: Interactions to count (``None``: all of them).
        rng: Seed of ARPACK's start vector and of the cold items' noise.
        window: Largest distance, in steps of a user's log, of a counted pair.

    Returns:
        Unit-norm float32 vectors, ``(n_items, dim)``.

    Raises:
        ConfigError: If ``dim`` is not below the number of items, or nothing co-occurs.
    """
    n = dataset.n_items
    if not 0 < dim < n:
        raise ConfigError(
            f"embedding_dim={dim} must be between 1 and {n - 1} for {n} items; use a "
            "smaller embedding_dim."
        )
    users, items = dataset.interaction_users, dataset.items  # by user, then time
    if train_mask is not None:
        users, items = users[train_mask], items[train_mask]
    rows, cols = [], []
    for k in range(1, window + 1):
        same = users[:-k] == users[k:]
        rows.append(items[:-k][same])
        cols.append(items[k:][same])
    r, c = np.concatenate(rows), np.concatenate(cols)
    if not len(r):
        raise ConfigError("No two train interactions of one user: nothing co-occurs for 'sppmi'.")
    counts = sp.coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)).tocsr()
    counts = (counts + counts.T).tocoo()
    row_sums = np.bincount(counts.row, weights=counts.data, minlength=n)
    context = row_sums**SPPMI_SMOOTHING
    context /= context.sum()
    pmi = np.log(counts.data / (row_sums[counts.row] * context[counts.col]))
    keep = pmi > 0
    m = sp.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])), shape=(n, n))
    m = (m + m.T) / 2  # the smoothing makes PMI asymmetric
    v0 = as_generator(rng).uniform(-1, 1, n)
    vals, vecs = eigsh(m, k=dim, which="LA", v0=v0)
    order = np.argsort(-vals)
    v = vecs[:, order] * np.sqrt(np.maximum(vals[order], 0.0))
    sign = np.sign(v[np.abs(v).argmax(axis=0), np.arange(dim)])
    v *= np.where(sign == 0, 1.0, sign)
    warm = np.linalg.norm(v, axis=1) > 1e-9
    return _fill_cold(dataset, normalize_rows(v), warm, rng)


def genre_embeddings(dataset: Dataset, dim: int = 32, rng: RNGLike = 0) -> np.ndarray:
    """Genre multi-hot plus standardised year, centred, randomly projected to ``dim``."""
    g = dataset.genre_matrix.toarray().astype(np.float64)
    year = dataset.item_table["year"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    known = np.isfinite(year)
    z = np.zeros_like(year)
    if known.sum() > 1 and np.nanstd(year) > 0:
        z[known] = (year[known] - np.nanmean(year)) / np.nanstd(year)
    feats = np.column_stack([g, z])
    feats -= feats.mean(axis=0)
    proj = as_generator(rng).normal(0, 1 / np.sqrt(dim), (feats.shape[1], dim))
    out = feats @ proj
    zero = np.linalg.norm(out, axis=1) == 0
    if zero.any():  # items identical to the mean feature vector
        out[zero] = as_generator(rng).normal(0, 1, (int(zero.sum()), dim))
    return normalize_rows(out)


def random_embeddings(n_items: int, dim: int = 32, rng: RNGLike = 0) -> np.ndarray:
    """Seeded Gaussian vectors, normalised."""
    return normalize_rows(as_generator(rng).normal(0, 1, (n_items, dim)))


def load_embeddings_file(
    path: str | os.PathLike[str],
    dataset: Dataset,
    dim: int | None = None,
    ids: np.ndarray | None = None,
    rng: RNGLike = 0,
) -> np.ndarray:
    """Load item vectors from a file and align them with the dataset's items.

    Args:
        path: ``.npy`` (matrix; rows in dataset item order unless ``ids`` is given), ``.npz``
            (``ids`` and ``vectors``), or ``.pkl``/``.pickle`` (``{movieId: vector}``).
        dataset: The dataset whose items the rows must match.
        dim: Expected dimension (checked when given).
        ids: movieIds of the rows of a ``.npy`` matrix.
        rng: Seed of the cold-item noise.

    Returns:
        Unit-norm float32 vectors; items missing from the file get the cold-item fallback.

    Raises:
        DataFormatError: If the file is missing, unreadable, or its shape does not fit.
        ConfigError: If its dimension differs from ``dim``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"Embedding file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".pkl", ".pickle"):
            with open(path, "rb") as fh:
                table = pickle.load(fh)  # noqa: S301 - the user's own file, documented
            if not isinstance(table, dict) or not table:
                raise DataFormatError(f"{path} must hold a non-empty dict {{movieId: vector}}.")
            ids = np.array([int(k) for k in table], dtype=np.int64)
            vectors = np.stack([_as_numpy(v) for v in table.values()])
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "ids" not in z or not ({"vectors", "embeddings"} & set(z.files)):
                    raise DataFormatError(
                        f"{path} must hold arrays 'ids' and 'vectors'; it has {z.files}."
                    )
                ids = z["ids"].astype(np.int64)
                vectors = z["vectors"] if "vectors" in z.files else z["embeddings"]
        elif suffix == ".npy":
            vectors = np.load(path, allow_pickle=False)
            if ids is None:
                if vectors.ndim != 2 or vectors.shape[0] != dataset.n_items:
                    raise DataFormatError(
                        f"{path} has shape {vectors.shape}; without ids= it needs one row per "
                        f"item of {dataset.name}: ({dataset.n_items}, dim)."
                    )
                ids = dataset.item_ids
        else:
            raise DataFormatError(
                f"Embedding file {path.name!r}: unknown extension; use .npy, .npz or .pkl."
            )
    except (OSError, ValueError, pickle.UnpicklingError, EOFError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(f"Cannot read embedding file {path}: {exc}") from exc
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) != len(ids):
        raise DataFormatError(f"{path}: {len(ids)} ids but vectors of shape {vectors.shape}.")
    if dim is not None and vectors.shape[1] != dim:
        raise ConfigError(
            f"{path} holds {vectors.shape[1]}-dimensional vectors but embedding_dim={dim}; "
            f"pass embedding_dim={vectors.shape[1]}."
        )
    pos = np.searchsorted(dataset.item_ids, ids)
    pos = np.minimum(pos, dataset.n_items - 1)
    known = dataset.item_ids[pos] == ids
    if (~known).any():
        warnings.warn(
            f"{path.name}: {int((~known).sum())} vector(s) for movieIds not in {dataset.name} "
            "were ignored.",
            RecgymWarning,
            stacklevel=2,
        )
    out = np.zeros((dataset.n_items, vectors.shape[1]))
    out[pos[known]] = vectors[known]
    warm = np.zeros(dataset.n_items, dtype=bool)
    warm[pos[known]] = True
    return _fill_cold(dataset, normalize_rows(out), warm, rng)


def _as_numpy(v: object) -> np.ndarray:
    if hasattr(v, "detach"):  # a torch tensor, as RecNN's pickles hold
        v = v.detach().cpu().numpy()  # type: ignore[attr-defined]
    return np.asarray(v, dtype=np.float64).ravel()


def _fill_cold(dataset: Dataset, emb: np.ndarray, warm: np.ndarray, rng: RNGLike) -> np.ndarray:
    """Give items outside ``warm`` the genre-weighted mean of warm vectors plus small noise."""
    cold = ~warm
    if not cold.any():
        return emb
    if not warm.any():
        raise ConfigError("No item has a vector to fall back on (no train ratings?).")
    g = dataset.genre_matrix
    gw, gc = g[warm], g[cold]
    num = gc @ (gw.T @ emb[warm].astype(np.float64))
    den = gc @ np.asarray(gw.sum(axis=0)).ravel()
    mean = emb[warm].mean(axis=0)
    fallback = np.where(den[:, None] > 0, num / np.maximum(den, 1e-12)[:, None], mean)
    fallback = normalize_rows(fallback).astype(np.float64)
    noise = normalize_rows(as_generator(rng).normal(0, 1, fallback.shape)) * 0.05
    out = emb.copy()
    out[cold] = normalize_rows(fallback + noise)
    return out


def item_embeddings(
    dataset: Dataset,
    method: str = "svd",
    dim: int = 32,
    *,
    split: Split | None = None,
    rng: RNGLike = 0,
    path: str | os.PathLike[str] | None = None,
    cache: bool = True,
) -> np.ndarray:
    """Item embeddings by name, fitted on the train part of ``split`` and cached on disk.

    Args:
        dataset: The dataset.
        method: ``"svd"``, ``"implicit"``, ``"sppmi"``, ``"genres"``, ``"random"`` or
            ``"from_file"`` (with ``path``).
        dim: Embedding dimension.
        split: Fit on its train interactions (``None``: all interactions, for exploration only:
            this leaks held-out users into the embeddings).
        rng: Seed (an int makes the result cacheable).
        path: The file for ``"from_file"``.
        cache: Read and write the on-disk cache.

    Returns:
        Unit-norm float32 vectors, ``(n_items, dim)``.

    Raises:
        ConfigError: For an unknown method or a bad dimension.

    Examples:
        >>> from recgym.data import synthetic_dataset, split_users
        >>> ds = synthetic_dataset(n_users=60, n_items=300, n_ratings=2400)
        >>> emb = item_embeddings(ds, "svd", 8, split=split_users(ds), cache=False)
        >>> emb.shape, emb.dtype, bool(np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5))
        ((300, 8), dtype('float32'), True)
    """
    check_choice("embedding", method, METHODS)
    check_int("embedding_dim", dim)
    if method == "from_file" and path is None:
        raise ConfigError("embedding='from_file' needs path= (a .npy, .npz or .pkl file).")
    key = _cache_key(dataset, method, dim, split, rng, path)
    file = cache_dir() / "embeddings" / f"{key}.npy" if (cache and key) else None
    emb = read_cached(file, (dataset.n_items, dim))
    if emb is not None:
        return emb
    train_mask = split.train_mask if split is not None else None
    if method == "svd":
        emb = svd_embeddings(dataset, dim, train_mask, rng)
    elif method == "implicit":
        emb = implicit_embeddings(dataset, dim, train_mask, rng)
    elif method == "sppmi":
        emb = sppmi_embeddings(dataset, dim, train_mask, rng)
    elif method == "genres":
        emb = genre_embeddings(dataset, dim, rng)
    elif method == "random":
        emb = random_embeddings(dataset.n_items, dim, rng)
    else:
        emb = load_embeddings_file(path, dataset, dim, rng=rng)  # type: ignore[arg-type]
    write_cached(file, emb)
    return emb


def read_cached(file: Path | None, shape: tuple[int, int]) -> np.ndarray | None:
    """A cached float32 matrix of ``shape`` from ``file``; ``None`` if absent or unreadable.

    A file that cannot be read, or holds another shape or type, is reported with a
    :class:`RecgymWarning` (the caller then computes the matrix again and overwrites it).
    """
    if file is None or not file.is_file():
        return None
    try:
        emb = np.load(file, allow_pickle=False)
        if emb.shape == shape and emb.dtype == np.float32:
            return emb
        raise ValueError(f"shape {emb.shape} {emb.dtype}")
    except (OSError, ValueError, EOFError) as exc:
        warnings.warn(f"Embedding cache {file} is corrupt ({exc}); recomputing.", RecgymWarning, 3)
    return None


def write_cached(file: Path | None, emb: np.ndarray) -> None:
    """Write ``emb`` to ``file`` atomically (temporary file, then rename); ``None``: nothing."""
    if file is not None:
        ensure_writable_dir(file.parent, "cache")
        with atomic_write(file) as fh:
            np.save(fh, emb)


def _cache_key(
    dataset: Dataset,
    method: str,
    dim: int,
    split: Split | None,
    rng: RNGLike,
    path: str | os.PathLike[str] | None,
) -> str | None:
    seed = seed_key(rng)
    split_key = "all" if split is None else split.key
    if seed is None or split_key is None:
        return None
    if method in ("genres", "random"):
        split_key = "-"  # these ignore ratings, hence the split
    extra = ""
    if path is not None:
        st = Path(path).stat()
        extra = f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}"
    raw = f"{dataset.fingerprint}|{split_key}|{method}|{dim}|{seed}|{extra}|v1"
    # the dataset's name first, so that `recgym data cache` can tell whose file this is
    digest = hashlib.sha1(raw.encode()).hexdigest()[:16]
    return f"{safe_name(dataset.name)}-{method}-{dim}-{digest}"
