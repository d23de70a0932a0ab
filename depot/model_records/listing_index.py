"""The model listings of large spaces, answered from an index each process keeps in memory.

Why: a listing counts every model that matches, and `q` matches text as a substring, so in
SQL it walks the space's whole index and reads the text of every model the filters pass:
for 100k models, p95 28 ms on SQLite for the statement alone. Held in memory as columns
(numpy codes for the filters, the lowercased search texts in a list, newest first), the same
300 benchmark queries took p95 5.5 ms.

How an index stays true: triggers on ``model_cards`` bump the space's generation in every
transaction that changes one of its cards, stamp a changed card with the generation it made
and log a deleted one (migration 0008), whichever process or replica writes. A listing reads
the generation in its own transaction. An index read at that generation answers at once; one
read at most ``CATCH_UP_AT_MOST`` generations earlier first takes in the cards stamped and the
deletions logged since (a few milliseconds for a few changes); otherwise the listing runs in
SQL while a thread of this process reads the space again, reading the generation before the
cards, so that an index never claims a generation newer than its rows. An index therefore
never answers with anything but what the database holds.

Which spaces: those with at least ``MIN_MODELS`` models (smaller ones take SQL a few
milliseconds), at most ``CACHE_MODELS`` models in all per process (100k models of the
listing benchmark, whose search texts are 440 characters on average, take 72 MiB), least
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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import BindParameter, Engine, String, bindparam, func, select, type_coerce
from sqlalchemy.orm import Session

from depot.db.columns import execute_columns
from depot.model_records.models import (
    LISTED_COLUMNS,
    ModelCard,
    ModelListingDeletion,
    ModelListingGeneration,
)

if TYPE_CHECKING:
    # Imported where used: numpy takes about 15 MiB, which a server that never searches or
    # lists a large space need not hold (the idle memory target, docs/performance.md).
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "CACHE_MODELS",
    "CATCH_UP_AT_MOST",
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
# An index this many generations behind or fewer catches up; one further behind is rebuilt
# (the deletion log keeps 10,000 generations: migration 0008).
CATCH_UP_AT_MOST = 500
# The card columns filters test: the listing indexes' columns but the archive time.
FILTERED = tuple(column for column in LISTED_COLUMNS if column != "archived_at")

_SPACE: BindParameter[int] = bindparam("space_id")
_GENERATION = select(ModelListingGeneration.generation).where(
    ModelListingGeneration.space_id == _SPACE
)
_COUNT = select(func.count()).select_from(ModelCard).where(ModelCard.space_id == _SPACE)
# The id and the times come as the driver gives them (``type_coerce``): converting 100k ids
# to UUIDs and times to datetimes made reading them two to three times slower, and the build
# holds the GIL while it converts. Only a page's ids are converted (_as_uuid). The raw values
# still sort as the database sorts them: SQLite's text, PostgreSQL's timestamps and UUIDs.
_CARD_COLUMNS = (
    type_coerce(ModelCard.artifact_id, String),
    type_coerce(ModelCard.created_at, String),
    type_coerce(ModelCard.archived_at, String),
    *(getattr(ModelCard, column) for column in FILTERED),
    ModelCard.search_text,
)
# In the order of the SQL listing: newest first, the id breaking ties.
_CARDS = (
    select(*_CARD_COLUMNS)
    .where(ModelCard.space_id == _SPACE)
    .order_by(ModelCard.created_at.desc(), ModelCard.artifact_id.desc())
)
_STREAMED_CARDS = _CARDS.execution_options(yield_per=2000)
_SINCE: BindParameter[int] = bindparam("since")
_CHANGED = select(*_CARD_COLUMNS).where(
    ModelCard.space_id == _SPACE, ModelCard.listing_generation > _SINCE
)
_DELETED = select(
    type_coerce(ModelListingDeletion.artifact_id, String),
    type_coerce(ModelListingDeletion.created_at, String),
).where(ModelListingDeletion.space_id == _SPACE, ModelListingDeletion.generation > _SINCE)
_FIRST_FILTERED = 3  # the position of FILTERED's first column in a row of _CARD_COLUMNS


@dataclass(frozen=True)
class SpaceIndex:
    """The cards of one space at one generation, newest first.

    Attributes:
        generation: The space's generation the cards were read at.
        ids: The models' artifact ids, as the database driver returns them.
        created: Their creation times, the same way.
        archived: Whether each model is archived.
        codes: For each filtered column, each model's value as a small integer...
        values: ...and the integer of each value the column holds.
        texts: Each model's lowercased search text.
    """

    generation: int
    ids: list[Any]
    created: list[Any]
    archived: npt.NDArray[np.bool_]
    codes: dict[str, npt.NDArray[np.int32]]
    values: dict[str, dict[str | None, int]]
    texts: list[str]

    @classmethod
    def from_rows(cls, generation: int, rows: Iterable[Sequence[Any]]) -> SpaceIndex:
        """Build the index from rows of ``_CARDS``, in one pass.

        Each filter value is turned into its code as its row goes by, so that the row's
        strings are freed at once and their memory serves the next rows: 100k models held
        about 70 MiB this way, 107 MiB when all rows were read first.
        """
        import numpy as np

        ids: list[Any] = []
        created: list[Any] = []
        archived: list[bool] = []
        texts: list[str] = []
        values: dict[str, dict[str | None, int]] = {column: {} for column in FILTERED}
        codes: dict[str, list[int]] = {column: [] for column in FILTERED}
        columns = [
            (position, values[column], codes[column])
            for position, column in enumerate(FILTERED, start=_FIRST_FILTERED)
        ]
        for row in rows:
            ids.append(row[0])
            created.append(row[1])
            archived.append(row[2] is not None)
            for position, known, column_codes in columns:
                column_codes.append(known.setdefault(row[position], len(known)))
            texts.append(row[-1])
        return cls(
            generation=generation,
            ids=ids,
            created=created,
            archived=np.array(archived, dtype=np.bool_),
            codes={column: np.array(codes[column], dtype=np.int32) for column in FILTERED},
            values=values,
            texts=texts,
        )

    def __len__(self) -> int:
        return len(self.ids)

    def caught_up(
        self,
        generation: int,
        changed: Sequence[Sequence[Any]],
        deleted: Iterable[Sequence[Any]],
    ) -> SpaceIndex:
        """A copy of this index with ``changed`` cards (rows of ``_CHANGED``) and the
        ``deleted`` ones (rows of ``_DELETED``) taken in, at ``generation``.

        This index is left as it is: other threads read it. A card's creation time never
        changes, so where a changed or deleted card stood is found by bisection.
        """
        import numpy as np

        stood = {(row[1], row[0]) for row in changed} | {(row[1], row[0]) for row in deleted}
        positions = sorted(
            place
            for when, key in stood
            if (place := _place(self.created, self.ids, when, key)) < len(self.ids)
            and self.ids[place] == key
        )
        ids, created, texts = list(self.ids), list(self.created), list(self.texts)
        for i in reversed(positions):
            del ids[i], created[i], texts[i]
        archived = np.delete(self.archived, positions)
        codes = {column: np.delete(self.codes[column], positions) for column in FILTERED}
        values = {column: dict(known) for column, known in self.values.items()}
        # Newest first, like the rows they go among; np.insert places each before the
        # position it is given in the array as it was, so equal positions keep this order.
        added = sorted(changed, key=lambda row: (row[1], row[0]), reverse=True)
        places = [_place(created, ids, row[1], row[0]) for row in added]
        for place, row in zip(reversed(places), reversed(added), strict=True):
            ids.insert(place, row[0])
            created.insert(place, row[1])
            texts.insert(place, row[-1])
        archived = np.insert(archived, places, [row[2] is not None for row in added])
        for position, column in enumerate(FILTERED, start=_FIRST_FILTERED):
            known = values[column]
            new_codes = [known.setdefault(row[position], len(known)) for row in added]
            codes[column] = np.insert(codes[column], places, new_codes)
        return SpaceIndex(generation, ids, created, archived, codes, values, texts)

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
        import numpy as np

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


def _place(created: Sequence[Any], ids: Sequence[Any], when: Any, key: Any) -> int:
    """Where a card created ``when`` with id ``key`` goes among cards newest first."""
    low, high = 0, len(ids)
    while low < high:
        middle = (low + high) // 2
        if (created[middle], ids[middle]) > (when, key):
            low = middle + 1
        else:
            high = middle
    return low


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
                generation = execute_columns(db, _GENERATION, {"space_id": space_id}).scalar() or 0
                count = db.scalar(_COUNT, {"space_id": space_id}) or 0
                index = None
                if MIN_MODELS <= count <= CACHE_MODELS:
                    rows = db.execute(_STREAMED_CARDS, {"space_id": space_id})
                    index = SpaceIndex.from_rows(generation, rows)
            finished = time.monotonic()
            self.put(engine, space_id, _Entry(generation, index, finished, finished - started))
        except Exception:
            log.exception("building the listing index of space %s failed", space_id)
        finally:
            with self._lock:
                self._pending.discard(key)

    def put(self, engine: Engine, space_id: int, entry: _Entry) -> None:
        key = (id(engine), space_id)
        with self._lock:
            current = self._entries.get(key)
            if (
                current is not None
                and current[0]() is engine
                and current[1].generation > entry.generation
            ):
                return  # another thread got further meanwhile
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
        reads, nor one close enough behind to catch up (the caller lists in SQL; a new
        index is built meanwhile, if the space is large enough), else what
        :meth:`SpaceIndex.page` returns.
    """
    engine = db.get_bind()
    if not isinstance(engine, Engine):
        return None
    generation = execute_columns(db, _GENERATION, {"space_id": space_id}).scalar() or 0
    entry = _indexes.get(engine, space_id)
    if (
        entry is not None
        and entry.index is not None
        and entry.generation < generation <= entry.generation + CATCH_UP_AT_MOST
    ):
        since = {"space_id": space_id, "since": entry.generation}
        index = entry.index.caught_up(
            generation,
            execute_columns(db, _CHANGED, since).all(),
            execute_columns(db, _DELETED, since).all(),
        )
        entry = replace(entry, generation=generation, index=index)
        _indexes.put(engine, space_id, entry)
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
