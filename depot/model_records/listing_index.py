"""The model listings of large spaces, answered from an index each process keeps in memory.

Why: a listing counts every model that matches, and `q` matches text as a substring, so in
SQL it walks the space's whole index and reads the text of every model the filters pass:
for 100k models, p95 28 ms on SQLite for the statement alone. Held in memory as columns
(numpy codes for the filters, the lowercased search texts in a list, newest first), the same
300 benchmark queries took p95 5.5 ms.

How an index stays true: triggers on ``model_cards`` bump the space's generation in every
transaction that changes one of its cards (migration 0008), whichever process or replica
writes. A listing reads the generation in its own transaction and uses the index only if it
was built at that generation; otherwise the listing runs in SQL, and a thread of this
process builds a new index, reading the generation before the cards, so that an index never
claims a generation newer than its rows. An index therefore never answers with anything but
what the database holds; a space that keeps changing is answered by SQL meanwhile.

Which spaces: those with at least ``MIN_MODELS`` models (smaller ones take SQL a few
milliseconds), at most ``CACHE_MODELS`` models in all per process (100k models of the
listing benchmark, whose search texts are 440 characters on average, take 70 MiB), least
recently used first out. A space is built again at most once per ten times
its last build took, so that one that changes all the time costs a tenth of a core at most.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import BindParameter, Engine, String, bindparam, func, select, type_coerce
from sqlalchemy.orm import Session

from depot.model_records.models import ModelCard, ModelListingGeneration

__all__ = [
    "CACHE_MODELS",
    "MIN_MODELS",
    "REBUILD_FACTOR",
    "SpaceIndex",
    "clear",
    "listing_page",
    "wait_for_builds",
]

log = logging.getLogger(__name__)

MIN_MODELS = 2_000
CACHE_MODELS = 200_000
# A space is rebuilt at most once per this many times its last build took.
REBUILD_FACTOR = 10
# The card columns filters test, besides the archive time.
FILTERED = (
    "product_type",
    "model_family",
    "deployment_status",
    "model_task_type",
    "risk_classification",
)

_SPACE: BindParameter[int] = bindparam("space_id")
_GENERATION = select(ModelListingGeneration.generation).where(
    ModelListingGeneration.space_id == _SPACE
)
_COUNT = select(func.count()).select_from(ModelCard).where(ModelCard.space_id == _SPACE)
# In the order of the SQL listing: newest first, the id breaking ties. The id and archive
# time come as the driver gives them (``type_coerce``): converting 100k ids to UUIDs and
# times to datetimes made reading them two to three times slower, and the build holds the
# GIL while it converts. Only a page's ids are converted (_as_uuid).
_CARDS = (
    select(
        type_coerce(ModelCard.artifact_id, String),
        type_coerce(ModelCard.archived_at, String),
        *(getattr(ModelCard, column) for column in FILTERED),
        ModelCard.search_text,
    )
    .where(ModelCard.space_id == _SPACE)
    .order_by(ModelCard.created_at.desc(), ModelCard.artifact_id.desc())
)
_STREAMED_CARDS = _CARDS.execution_options(yield_per=2000)


@dataclass(frozen=True)
class SpaceIndex:
    """The cards of one space at one generation, newest first.

    Attributes:
        generation: The space's generation the cards were read at.
        ids: The models' artifact ids, as the database driver returns them.
        archived: Whether each model is archived.
        codes: For each filtered column, each model's value as a small integer...
        values: ...and the integer of each value the column holds.
        texts: Each model's lowercased search text.
    """

    generation: int
    ids: list[Any]
    archived: npt.NDArray[np.bool_]
    codes: dict[str, npt.NDArray[np.int32]]
    values: dict[str, dict[str | None, int]]
    texts: list[str]

    @classmethod
    def from_rows(cls, generation: int, rows: Iterable[Sequence[Any]]) -> SpaceIndex:
        """Build the index from rows of ``_CARDS``, in one pass.

        Each filter value is turned into its code as its row goes by, so that the row's
        strings are freed at once and their memory serves the next rows: 100k models held
        70 MiB this way, 107 MiB when all rows were read first.
        """
        ids: list[Any] = []
        archived: list[bool] = []
        texts: list[str] = []
        values: dict[str, dict[str | None, int]] = {column: {} for column in FILTERED}
        codes: dict[str, list[int]] = {column: [] for column in FILTERED}
        columns = [
            (position, values[column], codes[column])
            for position, column in enumerate(FILTERED, start=2)
        ]
        for row in rows:
            ids.append(row[0])
            archived.append(row[1] is not None)
            for position, known, column_codes in columns:
                column_codes.append(known.setdefault(row[position], len(known)))
            texts.append(row[-1])
        return cls(
            generation=generation,
            ids=ids,
            archived=np.array(archived, dtype=np.bool_),
            codes={column: np.array(codes[column], dtype=np.int32) for column in FILTERED},
            values=values,
            texts=texts,
        )

    def __len__(self) -> int:
        return len(self.ids)

    def page(
        self,
        wanted: Mapping[str, Sequence[str]],
        *,
        q: str | None,
        include_archived: bool,
        skip: int,
        limit: int,
    ) -> tuple[list[uuid.UUID], int]:
        """The ids of one page of matching models, newest first, and how many match.

        Args:
            wanted: For each filtered column, the values a model may have there.
            q: Text the model's search text must contain (case-insensitive).
        """
        mask = np.ones(len(self.ids), dtype=np.bool_) if include_archived else ~self.archived
        for column, accepted in wanted.items():
            known = self.values[column]
            codes = [known[value] for value in accepted if value in known]
            mask &= np.isin(self.codes[column], codes)
        positions: Iterable[int] = np.flatnonzero(mask).tolist()
        if q:
            needle, texts = q.lower(), self.texts
            positions = [i for i in positions if needle in texts[i]]
        matches = list(positions)
        return [_as_uuid(self.ids[i]) for i in matches[skip : skip + limit]], len(matches)


def _as_uuid(value: Any) -> uuid.UUID:
    # SQLite stores the 32 hex digits; PostgreSQL's driver returns a UUID already.
    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=str(value))


@dataclass(frozen=True)
class _Entry:
    generation: int
    index: SpaceIndex | None  # None: the space was too small (or too large) to keep
    built_at: float
    build_seconds: float


_Key = tuple[int, int]  # (id of the engine, space id)


class _Indexes:
    """The entries of one process, least recently used first, and the thread that builds them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[_Key, tuple[weakref.ref[Engine], _Entry]] = OrderedDict()
        self._models = 0
        self._pending: set[_Key] = set()
        self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="depot-listing-index")

    def get(self, engine: Engine, space_id: int) -> _Entry | None:
        key = (id(engine), space_id)
        with self._lock:
            item = self._entries.get(key)
            if item is None or item[0]() is not engine:  # an id reused by another engine
                return None
            self._entries.move_to_end(key)
            return item[1]

    def build_later(self, engine: Engine, space_id: int, stale: _Entry | None) -> None:
        """Have the builder thread read the space again, unless it is on it or rebuilt it lately."""
        key = (id(engine), space_id)
        if stale is not None and time.monotonic() < stale.built_at + (
            REBUILD_FACTOR * stale.build_seconds
        ):
            return
        with self._lock:
            if key in self._pending:
                return
            self._pending.add(key)
        self._builder.submit(self._build, engine, space_id)

    def wait(self) -> None:
        self._builder.submit(lambda: None).result()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._models = 0

    def _build(self, engine: Engine, space_id: int) -> None:
        key = (id(engine), space_id)
        started = time.monotonic()
        try:
            # One transaction; the generation first (see the module's docstring).
            with Session(engine) as db:
                generation = db.scalar(_GENERATION, {"space_id": space_id}) or 0
                count = db.scalar(_COUNT, {"space_id": space_id}) or 0
                index = None
                if MIN_MODELS <= count <= CACHE_MODELS:
                    rows = db.execute(_STREAMED_CARDS, {"space_id": space_id})
                    index = SpaceIndex.from_rows(generation, rows)
            finished = time.monotonic()
            self._put(engine, key, _Entry(generation, index, finished, finished - started))
        except Exception:
            log.exception("building the listing index of space %s failed", space_id)
        finally:
            with self._lock:
                self._pending.discard(key)

    def _put(self, engine: Engine, key: _Key, entry: _Entry) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None and old[1].index is not None:
                self._models -= len(old[1].index)
            self._entries[key] = (weakref.ref(engine), entry)
            if entry.index is not None:
                self._models += len(entry.index)
            while self._models > CACHE_MODELS:
                _, (_, dropped) = self._entries.popitem(last=False)
                if dropped.index is not None:
                    self._models -= len(dropped.index)


_indexes = _Indexes()


def listing_page(
    db: Session,
    space_id: int,
    wanted: Mapping[str, Sequence[str]],
    *,
    q: str | None,
    include_archived: bool,
    skip: int,
    limit: int,
) -> tuple[list[uuid.UUID], int] | None:
    """A page of the space's listing and the number of matches, from its index if current.

    Returns:
        ``None`` when this process holds no index of the space at the generation ``db``
        reads (the caller lists in SQL; a new index is built meanwhile, if the space is
        large enough), else what :meth:`SpaceIndex.page` returns.
    """
    engine = db.get_bind()
    if not isinstance(engine, Engine):
        return None
    generation = db.scalar(_GENERATION, {"space_id": space_id}) or 0
    entry = _indexes.get(engine, space_id)
    if entry is not None and entry.generation == generation:
        if entry.index is None:
            return None
        return entry.index.page(
            wanted, q=q, include_archived=include_archived, skip=skip, limit=limit
        )
    _indexes.build_later(engine, space_id, entry)
    return None


def wait_for_builds() -> None:
    """Return once the builds asked for so far are done (tests)."""
    _indexes.wait()


def clear() -> None:
    """Forget every index (tests, and a process that wants its memory back)."""
    _indexes.clear()
