"""Python started with this folder on PYTHONPATH imports, of the installed distributions, only
those named in GPU_MACHINE_IMPORTABLE (comma-separated): what a lent GPU machine has plus the
payload. The others' modules are marked absent (None in sys.modules), so importing one fails
and `importlib.util.find_spec` finds none, as on that machine. The standard library and the
project's own modules are not distributions: they stay importable."""

from __future__ import annotations

import os
import sys
from importlib.metadata import packages_distributions

from packaging.utils import canonicalize_name

_importable = {canonicalize_name(name) for name in os.environ["GPU_MACHINE_IMPORTABLE"].split(",")}
for _module, _distributions in packages_distributions().items():
    if not _importable & {canonicalize_name(name) for name in _distributions}:
        sys.modules.setdefault(_module, None)
