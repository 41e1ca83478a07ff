r"""The package's version, in a module of its own so that any layer may record it (manifests, reports)
without importing the package facade (`scratchllm/__init__.py`, which sits at the top).

>>> import re
>>> bool(re.fullmatch(r"\d+\.\d+\.\d+", __version__))
True
"""

__version__ = "0.1.0"
