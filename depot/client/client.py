"""The Python client of Depot's native API; the ``depot`` CLI is built on it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from depot import __version__
from depot.client.config import cache_dir, load_config
from depot.client.digests import DigestCache
from depot.client.errors import ClientError, TransportError, error_from_response
from depot.client.models import (
    ArtifactInfo,
    FileInfo,
    Identity,
    NewToken,
    OrgInfo,
    PullResult,
    PushResult,
    SpaceInfo,
    TokenInfo,
    VersionInfo,
    from_json,
)
from depot.client.progress import ProgressCallback
from depot.client.pull import RemoteFile, pull_files
from depot.client.push import collect_files, push_files
from depot.client.refs import Ref, parse_ref, parse_space

__all__ = ["Client", "Pager"]

T = TypeVar("T")
_API = "/api/v1"


class Pager(Generic[T]):
    """The items of a listing, fetched a page at a time as you iterate.

    ``pager.first(n)`` gives at most ``n`` items without fetching more pages than needed.
    """

    def __init__(self, client: Client, path: str, params: dict[str, Any], cls: type[T]) -> None:
        self._client, self._path, self._params, self._cls = client, path, params, cls

    def __iter__(self) -> Iterator[T]:
        cursor: str | None = None
        while True:
            params = {**self._params, **({"cursor": cursor} if cursor else {})}
            page = self._client._get(self._path, params=params)
            for item in page["items"]:
                yield from_json(self._cls, item)
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def first(self, count: int) -> list[T]:
        """At most ``count`` items from the start."""
        return list(itertools.islice(self, count))


class Client:
    """A connection to a Depot server.

    Args:
        url: the server, e.g. ``http://127.0.0.1:8000``; ``DEPOT_URL`` or the
            ``depot login`` config otherwise.
        token: an API token; ``DEPOT_TOKEN`` or the config otherwise.
        org: the org that references without one mean; ``DEPOT_ORG``, the config, or
            the caller's only org otherwise.
        timeout: seconds to wait for the server on each request.

    Raises:
        ClientError: no server URL is known.

    Example::

        with Client("http://127.0.0.1:8000", token) as depot:
            result = depot.push("ml/churn", ["./model"], kind="model", alias="prod")
            depot.pull("ml/churn@prod", "./churn")
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        org: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        config = load_config()
        self.url = (url or config.url or "").rstrip("/")
        if not self.url:
            raise ClientError("no Depot server: run `depot login URL` or set DEPOT_URL")
        self.token = token or config.token
        self._org = org or config.org
        headers = {"user-agent": f"depot-client/{__version__}"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        self.http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            follow_redirects=True,
            transport=transport,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise TransportError(f"cannot reach {self.url}: {exc}") from exc
        if not response.is_success:
            raise error_from_response(response)
        return response

    def _get(self, path: str, **kwargs: Any) -> Any:
        return self._request("GET", path, **kwargs).json()

    def _default_org(self) -> str:
        if self._org is None:
            orgs = self.orgs()
            if len(orgs) != 1:
                names = ", ".join(org.slug for org in orgs) or "none"
                raise ClientError(
                    f"say which org (ORG/SPACE/NAME, --org or DEPOT_ORG); yours: {names}"
                )
            self._org = orgs[0].slug
        return self._org

    def _ref(self, ref: str | Ref) -> Ref:
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        return parsed if parsed.org else replace(parsed, org=self._default_org())

    def _artifact_path(self, ref: Ref) -> str:
        return f"{_API}/orgs/{ref.org}/spaces/{ref.space}/artifacts/{ref.name}"

    # -- who and where ---------------------------------------------------------------------------

    def whoami(self) -> Identity:
        """Who the token belongs to, the orgs they are in and the roles they hold."""
        body = self._get(f"{_API}/whoami")
        return Identity(
            username=body["username"],
            is_superuser=body["is_superuser"],
            orgs=[org["slug"] for org in body["orgs"]],
            roles=body["roles"],
        )

    def orgs(self) -> list[OrgInfo]:
        """The orgs the caller has a role in."""
        return [from_json(OrgInfo, org) for org in self._get(f"{_API}/orgs")]

    def spaces(self, *, org: str | None = None) -> list[SpaceInfo]:
        """The spaces of ``org`` (the default org otherwise) the caller may view."""
        org = org or self._default_org()
        return [from_json(SpaceInfo, space) for space in self._get(f"{_API}/orgs/{org}/spaces")]

    def create_space(
        self, slug: str, *, org: str | None = None, description: str = ""
    ) -> SpaceInfo:
        """Create a space (org admins)."""
        org = org or self._default_org()
        body = {"slug": slug, "description": description}
        return from_json(
            SpaceInfo, self._request("POST", f"{_API}/orgs/{org}/spaces", json=body).json()
        )

    # -- artifacts and versions ----------------------------------------------------------------

    def artifacts(
        self,
        space: str,
        *,
        kind: str | None = None,
        query: str | None = None,
        page_size: int = 100,
    ) -> Pager[ArtifactInfo]:
        """The artifacts of ``[ORG/]SPACE`` by name, optionally of one kind or matching words."""
        org, slug = parse_space(space)
        params: dict[str, Any] = {"limit": page_size}
        if kind:
            params["kind"] = kind
        if query:
            params["q"] = query
        path = f"{_API}/orgs/{org or self._default_org()}/spaces/{slug}/artifacts"
        return Pager(self, path, params, ArtifactInfo)

    def search(
        self, query: str, *, kind: str | None = None, org: str | None = None, page_size: int = 50
    ) -> Pager[ArtifactInfo]:
        """Artifacts in every space the caller may view whose name or description holds
        every word of ``query``."""
        params: dict[str, Any] = {"q": query, "limit": page_size}
        if kind:
            params["kind"] = kind
        if org:
            params["org"] = org
        return Pager(self, f"{_API}/search", params, ArtifactInfo)

    def artifact(self, ref: str) -> ArtifactInfo:
        """One artifact, ``[ORG/]SPACE/NAME``."""
        return from_json(ArtifactInfo, self._get(self._artifact_path(self._ref(ref))))

    def versions(self, ref: str) -> list[VersionInfo]:
        """The artifact's versions, newest first (without their files)."""
        parsed = self._ref(ref)
        where = {"org": parsed.org, "space": parsed.space, "name": parsed.name}
        return [
            from_json(VersionInfo, {**item, **where}, files=None)
            for item in self._get(f"{self._artifact_path(parsed)}/versions")
        ]

    def version(self, ref: str) -> VersionInfo:
        """One version with its files: ``[ORG/]SPACE/NAME[:VERSION|@ALIAS]`` (latest if none)."""
        parsed = self._ref(ref)
        quoted = quote(parsed.version or "latest", safe="")
        body = self._get(f"{self._artifact_path(parsed)}/versions/{quoted}")
        files = [from_json(FileInfo, item) for item in body.pop("files")]
        return from_json(VersionInfo, body, files=files)

    def delete(self, ref: str) -> None:
        """Delete one version (``NAME:VERSION``) or the whole artifact (``NAME``)."""
        parsed = self._ref(ref)
        path = self._artifact_path(parsed)
        if parsed.version is not None:
            path += f"/versions/{quote(parsed.version, safe='')}"
        self._request("DELETE", path)

    def set_alias(self, ref: str, alias: str) -> VersionInfo:
        """Point ``alias`` at the version ``ref`` names (latest if none), moving it if set."""
        parsed = self._ref(ref)
        body = self._request(
            "PUT",
            f"{self._artifact_path(parsed)}/aliases/{quote(alias, safe='')}",
            json={"version": parsed.version or "latest"},
        ).json()
        where = {"org": parsed.org, "space": parsed.space, "name": parsed.name}
        return from_json(VersionInfo, {**body, **where})

    def remove_alias(self, ref: str, alias: str) -> None:
        """Remove ``alias`` from the artifact; the version stays."""
        parsed = self._ref(ref)
        self._request("DELETE", f"{self._artifact_path(parsed)}/aliases/{quote(alias, safe='')}")

    # -- tokens -------------------------------------------------------------------------------

    def tokens(self) -> list[TokenInfo]:
        """The caller's tokens, newest first, revoked ones included."""
        return [from_json(TokenInfo, item) for item in self._get(f"{_API}/tokens")]

    def create_token(self, *, name: str = "", expires_in_days: int | None = None) -> NewToken:
        """Issue a token for the caller; ``NewToken.token`` is shown this once."""
        body = self._request(
            "POST", f"{_API}/tokens", json={"name": name, "expires_in_days": expires_in_days}
        ).json()
        token = body.pop("token")
        return NewToken(from_json(TokenInfo, body), token)

    def revoke_token(self, token_id: str) -> None:
        """Revoke one of the caller's tokens."""
        self._request("DELETE", f"{_API}/tokens/{quote(token_id, safe='')}")

    # -- moving bytes -------------------------------------------------------------------------

    def push(
        self,
        ref: str,
        paths: Sequence[str | Path],
        *,
        kind: str | None = None,
        alias: str | None = None,
        metadata: dict[str, Any] | None = None,
        description: str = "",
        workers: int = 4,
        progress: ProgressCallback | None = None,
        journal_dir: Path | None = None,
        hash_first: bool = False,
    ) -> PushResult:
        """Push files and directories as one new version of ``[ORG/]SPACE/NAME``.

        A file goes in under its name; a directory's files under their path inside it.
        ``workers`` files go at once, each file's chunks in order. A file whose digest is
        known (from an earlier push or pull of it, unchanged since) or that is small is
        announced with it, and content the server already holds in a space the caller
        may write is not sent; a large file new to this machine is hashed while it is
        sent, so that its bytes are read once. If the push stops (Ctrl-C, a crash, a
        network failure) the same call continues it, re-sending nothing the server has.

        Args:
            kind: ``model``, ``artifact``, ``agent_skill`` or ``document`` (a new
                artifact is an ``artifact`` unless told; an existing one must match).
            alias: an alias to point at the new version.
            progress: called with a :class:`TransferProgress` as bytes move.
            journal_dir: where resumable state and the digest cache are kept
                (``$XDG_CACHE_HOME/depot``).
            hash_first: hash every file whose digest is not known before announcing it,
                so that no content the server holds is sent (such files are read twice).
        """
        parsed = self._ref(ref)
        if parsed.version is not None:
            raise ClientError("push to SPACE/NAME; the server numbers the new version")
        report = push_files(
            self.http,
            self._artifact_path(parsed),
            collect_files([Path(path) for path in paths]),
            journal_dir=journal_dir or cache_dir(),
            kind=kind,
            description=description,
            metadata=metadata,
            alias=alias,
            workers=workers,
            progress=progress,
            hash_first=hash_first,
        )
        version = self.version(f"{parsed}:{report.version['number']}")
        return PushResult(
            version, report.uploaded, report.present, report.bytes_sent, report.resumed
        )

    def pull(
        self,
        ref: str,
        dest: str | Path = ".",
        *,
        workers: int = 4,
        progress: ProgressCallback | None = None,
    ) -> PullResult:
        """Download a version's files into ``dest``, verified, in parallel, resumably.

        Files already in ``dest`` with the right SHA-256 are skipped; the others are
        fetched ``workers`` at a time, each as one stream, checked against their SHA-256
        as they arrive and moved into place atomically. An interrupted pull continues
        where it stopped when run again.

        Raises:
            IntegrityError: bytes that do not match their SHA-256 (they are discarded).
        """
        version = self.version(ref)
        base = f"{_API}/orgs/{version.org}/spaces/{version.space}/artifacts/{version.name}"
        files = [
            RemoteFile(
                path=file.path,
                size=file.size,
                sha256=file.sha256,
                url=f"{base}/versions/{version.number}/files/{quote(file.path)}",
            )
            for file in version.files or []
        ]
        target = Path(dest)
        digests = DigestCache(cache_dir())
        try:
            report = pull_files(
                self.http, files, target, workers=workers, progress=progress, digests=digests
            )
        finally:
            digests.close()
        return PullResult(
            version, target, report.downloaded, report.skipped, report.bytes_downloaded
        )
