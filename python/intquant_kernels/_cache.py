"""The one cache pattern of the packed objects: built once, under a lock."""
from __future__ import annotations

import threading


class BuildOnce:
    """Values built on first use and kept per key, safe to share between threads.

    A value is built under the lock, at most once per key; readers that find
    it take no lock.
    """

    __slots__ = ("_values", "_lock")

    def __init__(self):
        self._values = {}
        self._lock = threading.Lock()

    def get(self, key, build):
        """The value kept under ``key``, or ``build()``'s, kept from now on."""
        value = self._values.get(key)
        if value is None:
            with self._lock:
                value = self._values.get(key)
                if value is None:
                    value = build()
                    self._values[key] = value
        return value

    def keys(self) -> list:
        return list(self._values)

    def values(self) -> list:
        return list(self._values.values())
