"""The filter stages, one module a family. Importing this package imports every module in it, so
each registers its stages: a new filter is one new file here (docs/writing-a-stage.md)."""

import importlib
import pkgutil

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")
