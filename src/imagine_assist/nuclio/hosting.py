"""Served functions inside the gateway: loaded once in the background, swapped on reload.

A request takes the function object current when it starts and keeps it to the end, so a
reload never drops or changes a request in flight.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from imagine_assist.functions.spec import FunctionSpec
from imagine_assist.nuclio.protocol import Unavailable

log = logging.getLogger(__name__)

# A promotion by another process (`models promote` without --gateway, the loop) serves within
# this many seconds, in the gateway and in a Nuclio function; a look is a few stats per family
WATCH_MODELS_S = 5.0

Loader = Callable[[], object]  # returns a function object that `cvat_requests.answer` takes
Stamp = Callable[[], object]  # what changes on disk when the model to load changes
_UNSEEN = object()


@dataclass
class HostStatus:
    state: str  # "loading", "ready" or "failed"
    message: str = ""
    model: str = ""
    loaded_at: float | None = None
    # why the last reload failed while this model kept serving: it is then not the model
    # the registry names (healthz says so)
    reload_error: str = ""


def model_path_of(function) -> str:
    """The weights file a loaded function answers with ("" for one without a model)."""
    detector = getattr(function, "detector", None)
    if detector is None:  # the plankton separator holds a segmenter; a reid function nothing
        detector = getattr(getattr(function, "separate", None), "segmenter", None)
    return str(getattr(detector, "path", ""))


def model_version(model: str) -> str:
    """ "v3" for a registry version, "bundled" or "installed" otherwise, "" for no model."""
    if not model:
        return ""
    path = Path(model)
    if path.parent.parent.name == "versions" and path.parent.name.startswith("v"):
        return path.parent.name
    from imagine_assist.models.store import BUNDLED_DIR

    return "bundled" if BUNDLED_DIR in path.parents else "installed"


class FunctionHost:
    def __init__(self, spec: FunctionSpec, loader: Loader, stamp: Stamp | None = None) -> None:
        self.spec = spec
        self._loader = loader
        self._stamp = stamp
        self._loaded_stamp: object = _UNSEEN  # the stamp read just before the last load
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
            # read before loading: a change during the load is seen at the next look
            self._loaded_stamp = self._read_stamp()
            try:
                function = self._loader()
            except Exception as error:  # any failure must leave the gateway serving
                log.error("%s: loading the model failed: %s", self.spec.id, error)
                with self._lock:
                    if self._function is None:
                        self._status = HostStatus("failed", f"the model failed to load: {error}")
                    else:
                        self._status = replace(self._status, reload_error=str(error))
                    return HostStatus("failed", str(error))
            model = model_path_of(function)
            log.info("%s: loaded %s in %.1f s", self.spec.id, model, time.perf_counter() - started)
            with self._lock:
                self._function = function
                self._status = HostStatus("ready", "", model, time.time())
                return self._status

    def _read_stamp(self) -> object:
        if self._stamp is None:
            return None
        try:
            return self._stamp()
        except Exception as error:  # an unreadable models folder must not stop the watch
            return f"unreadable: {error}"

    def changed_on_disk(self) -> bool:
        """Whether the model to load has changed since the last load began (a promotion or
        rollback by another process). A failed load counts as seen, so a broken version is
        not retried until it changes again."""
        seen = self._loaded_stamp
        return seen is not _UNSEEN and self._read_stamp() != seen

    def load_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.load, name=f"load-{self.spec.id}", daemon=True)
        thread.start()
        return thread


class ModelWatch:
    """Reloads a function whose live model changed on disk, looking every `interval_s`: a
    version promoted or rolled back without `--gateway`, or a model installed by hand,
    serves without a restart. Loads run in this thread, one at a time; requests keep the
    previous model until the new one is ready (`FunctionHost.load`)."""

    def __init__(
        self,
        hosts: list[FunctionHost] | Callable[[], Iterable[FunctionHost]],
        interval_s: float,
    ) -> None:
        # a callable: the gateway's hosts as they are at each look (new ones included)
        self.hosts, self.interval_s = hosts, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-watch", daemon=True)

    def start(self) -> ModelWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def look(self) -> list[str]:
        """Reload every function whose model changed; the ids reloaded."""
        reloaded = []
        for host in list(self.hosts() if callable(self.hosts) else self.hosts):
            if self._stop.is_set():
                break
            if host.changed_on_disk():
                log.info("%s: its live model changed on disk; reloading", host.spec.id)
                host.load()
                reloaded.append(host.spec.id)
        return reloaded

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.look()
            except Exception:  # the watch must outlive any one bad look
                log.exception("watching the models failed; trying again")
