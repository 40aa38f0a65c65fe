"""The line: everything a request needs (settings, the live catalogue, audio, storage, the
rendered menus), made once at start-up by create_app and kept in app.extensions["ivr"]."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ivr.audio import AudioLibrary
from ivr.catalog import Catalog, CatalogError, load_catalog
from ivr.config import Settings
from ivr.flow import CallFlow
from ivr.prompts import PromptBook, load_wording
from ivr.steps import CallInfo, Urls
from ivr.store import Store

log = logging.getLogger(__name__)


class LiveCatalog:
    """The catalogue and its prompts, re-read when an administrator changes the files.

    A broken edit never takes the line down: the running line keeps its last good catalogue
    and logs what is wrong (start-up, by contrast, refuses a broken catalogue). A request
    only notices the change (a stat of the files, at most once a second); the files are read
    and checked in a thread of their own, and the requests meanwhile keep the catalogue they
    had, so no caller waits while a large catalogue is parsed.
    """

    RECHECK_SECONDS = 1.0

    def __init__(self, settings: Settings):
        self.settings = settings
        self._stamp = self._files_stamp()
        # (catalogue, prompt book, generation), replaced in one assignment so a request never
        # sees a catalogue with another's prompts; the generation counts reloads, so menus
        # rendered from an older catalogue are not reused
        self._state = (*self._load(), 0)
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self.loader: threading.Thread | None = None  # the reload in progress, if any

    def _load(self) -> tuple[Catalog, PromptBook]:
        catalog = load_catalog(self.settings.catalog)
        return catalog, PromptBook(catalog, load_wording(self.settings.prompts,
                                                         catalog.languages))

    def _files_stamp(self) -> tuple:
        paths = [self.settings.catalog, *sorted(Path(self.settings.prompts).glob("*.yaml"))]
        stamp: list[tuple[str, int | None, int | None]] = []
        for path in paths:
            try:
                st = os.stat(path)
                stamp.append((str(path), st.st_mtime_ns, st.st_size))
            except OSError:
                stamp.append((str(path), None, None))
        return tuple(stamp)

    def current(self) -> tuple[Catalog, PromptBook, int]:
        now = time.monotonic()
        if now - self._checked >= self.RECHECK_SECONDS and self._lock.acquire(blocking=False):
            try:
                self._checked = now
                loading = self.loader is not None and self.loader.is_alive()
                if not loading and self._files_stamp() != self._stamp:
                    self.loader = threading.Thread(target=self._reload, name="ivr-catalogue",
                                                   daemon=True)
                    self.loader.start()
            finally:
                self._lock.release()
        return self._state

    def _reload(self) -> None:
        stamp = self._files_stamp()  # what is read now (a later edit is noticed afterwards)
        try:
            catalog, book = self._load()
        except CatalogError as exc:
            log.error("catalogue change NOT applied, the line keeps the last good "
                      "catalogue: %s", exc)
        except Exception:  # any other fault of a new file: keep the last good
            log.exception("catalogue change NOT applied (it could not be read), "
                          "the line keeps the last good catalogue")
        else:
            self._state = (catalog, book, self._state[2] + 1)
            log.info("catalogue reloaded from %s", self.settings.catalog)
        self._stamp = stamp


@dataclass
class Line:
    """Everything a request needs, loaded and validated once at start-up."""

    settings: Settings
    live: LiveCatalog
    audio: AudioLibrary
    store: Store
    clock: Callable[[], datetime] | None = None  # tests fix the time; None: the real clock
    menus: dict = field(default_factory=dict)  # rendered menus, kept per process

    @property
    def catalog(self) -> Catalog:
        return self.live.current()[0]

    @property
    def book(self) -> PromptBook:
        return self.live.current()[1]

    def flow(self, urls: Urls, call: CallInfo | None = None) -> CallFlow:
        extra = {"now": self.clock} if self.clock else {}
        catalog, book, generation = self.live.current()
        return CallFlow(catalog, book, self.audio, urls, store=self.store,
                        call=call or CallInfo(),
                        caller_id=self.settings.caller_id,
                        cache=self.menus, generation=generation, **extra)


def load_line(settings: Settings) -> Line:
    assert settings.caller_key is not None
    return Line(settings, LiveCatalog(settings), AudioLibrary(settings.audio_dir),
                Store(settings.database, settings.caller_key))
