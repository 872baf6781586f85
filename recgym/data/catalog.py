"""The MovieLens variants recgym knows: where to download them and how their files look.

Facts from GroupLens (see ``docs``): archive URL, size and SHA-256, the folder each zip unpacks
to, and the native format of its ratings and movies files.
"""

from __future__ import annotations

from dataclasses import dataclass

from recgym.errors import UnknownDatasetError, suggest

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/"


@dataclass(frozen=True)
class MovieLensSpec:
    """How one MovieLens variant is published and stored.

    Attributes:
        name: The name recgym uses (``"ml-latest-small"``).
        folder: The folder the zip unpacks to (``"ml-10M100K"`` for ml-10m).
        layout: ``"csv"`` (ratings.csv/movies.csv), ``"dat"`` (``::``-separated ratings.dat and
            movies.dat) or ``"100k"`` (u.data/u.item/u.genre).
        encoding: Text encoding of the movies file.
        rating_range: Lowest and highest possible rating.
        sha256: SHA-256 of the zip, or ``None`` where GroupLens publishes only an MD5 file.
        size: Size of the zip in bytes, or ``None`` if unknown.
        n_ratings: Published number of ratings (for ``recgym data info``).
        n_users: Published number of users.
    """

    name: str
    folder: str
    layout: str
    encoding: str
    rating_range: tuple[float, float]
    sha256: str | None
    size: int | None
    n_ratings: int
    n_users: int

    @property
    def zip_name(self) -> str:
        """File name of the published archive."""
        return f"{self.name}.zip"

    @property
    def ratings_file(self) -> str:
        """Name of the ratings file inside :attr:`folder`."""
        return {"csv": "ratings.csv", "dat": "ratings.dat", "100k": "u.data"}[self.layout]

    @property
    def movies_file(self) -> str:
        """Name of the movies file inside :attr:`folder`."""
        return {"csv": "movies.csv", "dat": "movies.dat", "100k": "u.item"}[self.layout]


MOVIELENS: dict[str, MovieLensSpec] = {
    spec.name: spec
    for spec in [
        MovieLensSpec(
            "ml-latest-small",
            "ml-latest-small",
            "csv",
            "utf-8",
            (0.5, 5.0),
            "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
            978202,
            100_836,
            610,
        ),
        MovieLensSpec(
            "ml-100k",
            "ml-100k",
            "100k",
            "latin-1",
            (1.0, 5.0),
            "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            4924029,
            100_000,
            943,
        ),
        MovieLensSpec(
            "ml-1m",
            "ml-1m",
            "dat",
            "latin-1",
            (1.0, 5.0),
            "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            5917549,
            1_000_209,
            6_040,
        ),
        MovieLensSpec(
            "ml-10m", "ml-10M100K", "dat", "utf-8", (0.5, 5.0), None, None, 10_000_054, 69_878
        ),
        MovieLensSpec(
            "ml-20m",
            "ml-20m",
            "csv",
            "utf-8",
            (0.5, 5.0),
            "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
            198702078,
            20_000_263,
            138_493,
        ),
        MovieLensSpec(
            "ml-25m",
            "ml-25m",
            "csv",
            "utf-8",
            (0.5, 5.0),
            "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
            261978986,
            25_000_095,
            162_541,
        ),
        MovieLensSpec(
            "ml-32m", "ml-32m", "csv", "utf-8", (0.5, 5.0), None, None, 32_000_204, 200_948
        ),
    ]
}


def get_spec(name: str) -> MovieLensSpec:
    """Return the spec of a MovieLens variant.

    Args:
        name: A key of :data:`MOVIELENS`.

    Returns:
        The spec.

    Raises:
        UnknownDatasetError: For an unknown name, with the closest known name.

    Examples:
        >>> get_spec("ml-1m").layout
        'dat'
    """
    try:
        return MOVIELENS[name]
    except (KeyError, TypeError):
        raise UnknownDatasetError(
            f"Unknown dataset {name!r}; known MovieLens datasets: {sorted(MOVIELENS)}."
            + suggest(str(name), MOVIELENS)
            + " For your own ratings file use recgym.data.load_ratings(path)."
        ) from None
