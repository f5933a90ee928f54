"""A reference corpus every machine has: the documentation of Python's standard library (module,
class and function docstrings), one document per module. The classifier tests train on it as the
"texts you trust" against crawl pages."""

from __future__ import annotations

import importlib
import inspect
import sys
import warnings

_SKIP = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "lib2to3", "pydoc_data"}


def stdlib_docs(min_chars: int = 500, max_chars: int = 8000) -> list[str]:
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in sorted(sys.stdlib_module_names):
            if name.startswith("_") or name in _SKIP:
                continue
            try:
                mod = importlib.import_module(name)
            except Exception:  # platform modules that do not import here
                continue
            parts = [inspect.getdoc(mod) or ""]
            for attr in sorted(vars(mod)):
                obj = getattr(mod, attr, None)
                if attr.startswith("_") or getattr(obj, "__module__", None) != name:
                    continue
                doc = inspect.getdoc(obj)
                if doc and len(doc) > 200:
                    parts.append(doc)
            text = "\n\n".join(p for p in parts if p)
            if len(text) >= min_chars:
                out.append(text[:max_chars])
    return out
