"""Names a package imports on first use (PEP 562), so that importing it stays fast.

``import recgym`` registers the environment ids without loading pandas or SciPy, and
``import agents`` loads no torch: their public names are listed with the module that defines
each, and imported from it when first looked up.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` for lazily imported names.

    Args:
        package: The package's ``__name__``.
        exports: Public name -> the module that defines it.

    Returns:
        ``(__getattr__, __dir__)``, to assign at the package's top level. A name, once
        imported, is kept in the package (later look-ups do not come here).

    Examples:
        >>> getattr_, dir_ = lazy_exports("recgym.envs", {"ENV_IDS": "recgym.envs.registration"})
        >>> "MovieRec-v0" in getattr_("ENV_IDS") and "ENV_IDS" in dir_()
        True
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    __getattr__.__doc__ = f"Import a public name of {package} from its module on first use."
    __dir__.__doc__ = "The public names (for tab completion)."
    return __getattr__, __dir__
