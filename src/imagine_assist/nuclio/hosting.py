"""Served functions inside the gateway: loaded once in the background, swapped on reload.

A request takes the function object current when it starts and keeps it to the end, so a
reload never drops or changes a request in flight.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from imagine_assist.functions.spec import FunctionSpec

log = logging.getLogger(__name__)

Loader = Callable[[], object]  # returns a function object with handle(body)


class Unavailable(Exception):
    """The function has no model to answer with (HTTP 503)."""


@dataclass
class HostStatus:
    state: str  # "loading", "ready" or "failed"
    message: str = ""
    model: str = ""
    loaded_at: float | None = None


class FunctionHost:
    def __init__(self, spec: FunctionSpec, loader: Loader) -> None:
        self.spec = spec
        self._loader = loader
        self._lock = threading.Lock()
        self._function = None
        self._status = HostStatus("loading", "the model is loading")
        self._reloading = threading.Lock()  # one reload at a time per function

    @property
    def status(self) -> HostStatus:
        with self._lock:
            return self._status

    def current(self):
        with self._lock:
            function, status = self._function, self._status
        if function is None:
            raise Unavailable(f"{self.spec.id} cannot answer yet: {status.message}")
        return function

    def load(self) -> HostStatus:
        """Load (or reload) the model; on failure keep serving the previous one, if any."""
        with self._reloading:
            started = time.perf_counter()
            try:
                function = self._loader()
            except Exception as error:  # any failure must leave the gateway serving
                log.error("%s: loading the model failed: %s", self.spec.id, error)
                with self._lock:
                    if self._function is None:
                        self._status = HostStatus("failed", f"the model failed to load: {error}")
                    return HostStatus("failed", str(error))
            detector = getattr(function, "detector", None)  # a reid function has no model
            model = str(getattr(detector, "path", ""))
            log.info("%s: loaded %s in %.1f s", self.spec.id, model, time.perf_counter() - started)
            with self._lock:
                self._function = function
                self._status = HostStatus("ready", "", model, time.time())
                return self._status

    def load_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.load, name=f"load-{self.spec.id}", daemon=True)
        thread.start()
        return thread
