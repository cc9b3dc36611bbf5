"""The one cache of the package: values built on first use, kept per key, safe between threads."""
from __future__ import annotations

import threading
import weakref


class Cache:
    """Values built on first use and kept per key, safe to share between threads.

    ``get(key, build)`` returns the value kept under ``key``, or builds it with
    ``build()`` and keeps it. Building and storing happen under the cache's
    lock, so a value is built at most once per key and the mapping never
    changes while another thread changes it; a reader that finds its key
    takes no lock (a dict lookup is atomic, and so is the garbage collector's
    removal of a weak entry). A ``build`` that raises keeps nothing. With
    ``maxsize``, the oldest entry makes room for a new one. With
    ``weak_keys``, keys are held weakly: an entry goes with its key.
    """

    __slots__ = ("_values", "_lock", "_maxsize")

    def __init__(self, maxsize: int | None = None, weak_keys: bool = False):
        self._values = weakref.WeakKeyDictionary() if weak_keys else {}
        self._lock = threading.Lock()
        self._maxsize = maxsize

    def get(self, key, build):
        value = self._values.get(key)
        if value is not None:
            return value
        with self._lock:
            value = self._values.get(key)
            if value is None:
                value = build()
                if self._maxsize is not None and len(self._values) >= self._maxsize:
                    self._values.pop(next(iter(self._values)))
                self._values[key] = value
            return value

    def get_if_present(self, key):
        """The value kept under ``key``, or None."""
        return self._values.get(key)

    def keys(self) -> list:
        with self._lock:
            return list(self._values)

    def values(self) -> list:
        with self._lock:
            return list(self._values.values())
