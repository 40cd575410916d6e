"""The Store contract, for every backend: revisions, preconditions, lists at
past revisions, pagination and compaction."""

from __future__ import annotations

import asyncio
import random
from typing import Any, Callable

import pytest

from netlab.master.store import (
    KV,
    CompactedError,
    ConflictError,
    FutureRevisionError,
    KeyExistsError,
    NotFoundError,
    Store,
    StoreClosedError,
    open_store,
)
from netlab.master.store.base import prefix_end

P = "/registry/pods/"


def keys(items: list[KV]) -> list[str]:
    return [kv.key for kv in items]


def test_revisions_start_at_one_and_increase_per_write(store: Store) -> None:
    assert store.current_revision() == 0
    a = store.create(P + "default/a", b"1")
    b = store.create(P + "default/b", b"2")
    a2 = store.update(P + "default/a", b"3")
    gone = store.delete(P + "default/b")
    assert [a.mod_revision, b.mod_revision, a2.mod_revision, gone.mod_revision] == [1, 2, 3, 4]
    assert store.current_revision() == 4
    assert (a2.create_revision, a2.mod_revision, a2.value) == (1, 3, b"3")


def test_failed_writes_consume_no_revision(store: Store) -> None:
    kv = store.create(P + "a", b"1")
    with pytest.raises(KeyExistsError):
        store.create(P + "a", b"again")
    with pytest.raises(NotFoundError):
        store.update(P + "missing", b"x")
    with pytest.raises(ConflictError):
        store.update(P + "a", b"x", expected_revision=kv.mod_revision + 7)
    assert store.current_revision() == 1
    assert store.create(P + "b", b"2").mod_revision == 2


def test_create_only_if_absent_and_again_after_delete(store: Store) -> None:
    first = store.create(P + "a", b"v1")
    with pytest.raises(KeyExistsError) as exc:
        store.create(P + "a", b"v2")
    assert exc.value.key == P + "a"
    assert store.get(P + "a") == first
    store.delete(P + "a")
    again = store.create(P + "a", b"v3")
    assert again.create_revision == again.mod_revision == 3
    assert store.get(P + "a") == again


def test_update_checks_expected_revision(store: Store) -> None:
    kv = store.create(P + "a", b"v1")
    kv2 = store.update(P + "a", b"v2", expected_revision=kv.mod_revision)
    with pytest.raises(ConflictError) as exc:
        store.update(P + "a", b"stale", expected_revision=kv.mod_revision)
    assert (exc.value.expected, exc.value.actual) == (kv.mod_revision, kv2.mod_revision)
    kv3 = store.update(P + "a", b"v3")  # 0 = unconditional
    assert store.get(P + "a") == kv3 == KV(P + "a", b"v3", 1, 3)
    with pytest.raises(NotFoundError):
        store.update(P + "nope", b"x", expected_revision=1)


def test_delete_checks_expected_revision_and_returns_tombstone(store: Store) -> None:
    kv = store.create(P + "a", b"last")
    store.create(P + "b", b"x")
    with pytest.raises(ConflictError):
        store.delete(P + "a", expected_revision=kv.mod_revision + 1)
    tomb = store.delete(P + "a", expected_revision=kv.mod_revision)
    assert tomb == KV(P + "a", b"last", 1, 3)
    assert store.get(P + "a") is None
    with pytest.raises(NotFoundError):
        store.delete(P + "a")


def test_values_are_bytes_and_keys_are_checked(store: Store) -> None:
    assert store.create(P + "a", bytearray(b"\x00\xff")).value == b"\x00\xff"
    with pytest.raises(TypeError):
        store.create(P + "b", "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.create("", b"x")


def test_list_is_sorted_and_prefix_exact(store: Store) -> None:
    for k in ("/registry/pods/ns/b", "/registry/pods/ns/a", "/registry/podsx/ns/c",
              "/registry/pods/other/z", "/registry/pod"):
        store.create(k, b"v")
    res = store.list("/registry/pods/")
    assert keys(res.items) == ["/registry/pods/ns/a", "/registry/pods/ns/b",
                               "/registry/pods/other/z"]
    assert (res.revision, res.more) == (5, False)
    assert keys(store.list("/registry/pods/ns/").items) == ["/registry/pods/ns/a",
                                                            "/registry/pods/ns/b"]
    assert len(store.list("").items) == 5
    assert store.list("/nothing/").items == []


def test_list_unicode_keys_in_code_point_order(store: Store) -> None:
    names = ["a", "z", "\u00e9", "\u4e2d", "\U0001f600", "\ue000"]
    for n in names:
        store.create(P + n, b"v")
    store.create("/registry/pods\U0010ffff", b"outside")
    assert keys(store.list(P).items) == [P + n for n in sorted(names)]
    assert prefix_end("a\U0010ffff") == "b"
    assert prefix_end("\ud7ff") == "\ue000"
    assert prefix_end("") is None


def test_list_at_past_revision(store: Store) -> None:
    store.create(P + "a", b"a1")                 # 1
    store.create(P + "b", b"b1")                 # 2
    store.update(P + "a", b"a2")                 # 3
    store.delete(P + "b")                        # 4
    store.create(P + "c", b"c1")                 # 5

    def state(rev: int) -> list[tuple[str, bytes, int]]:
        res = store.list(P, revision=rev)
        assert res.revision == rev
        return [(kv.key[len(P):], kv.value, kv.mod_revision) for kv in res.items]

    assert state(1) == [("a", b"a1", 1)]
    assert state(2) == [("a", b"a1", 1), ("b", b"b1", 2)]
    assert state(3) == [("a", b"a2", 3), ("b", b"b1", 2)]
    assert state(4) == [("a", b"a2", 3)]
    assert state(5) == [("a", b"a2", 3), ("c", b"c1", 5)]
    with pytest.raises(FutureRevisionError):
        store.list(P, revision=6)


def test_pagination_walks_one_snapshot(store: Store) -> None:
    for i in range(25):
        store.create(f"{P}ns/p{i:02d}", b"v")
    first = store.list(P, limit=10)
    assert first.more and len(first.items) == 10
    # Writes between pages must not leak into a paginated list.
    store.create(f"{P}ns/p05x", b"new")
    store.delete(f"{P}ns/p20")
    seen = keys(first.items)
    page = first
    while page.more:
        page = store.list(P, revision=first.revision, limit=10, start_after=seen[-1])
        assert page.revision == first.revision
        seen += keys(page.items)
    assert seen == [f"{P}ns/p{i:02d}" for i in range(25)]
    assert len(store.list(P).items) == 25 and not store.list(P, limit=25).more
    exact = store.list(P, revision=first.revision, limit=25)
    assert len(exact.items) == 25 and not exact.more
    assert store.list(P, start_after=f"{P}ns/p23").items[-1].key == f"{P}ns/p24"
    assert store.list(P, start_after="/a").items[0].key == f"{P}ns/p00"
    with pytest.raises(ValueError):
        store.list(P, limit=-1)
    with pytest.raises(ValueError):
        store.list(P, revision=-1)


def test_compaction_expires_old_revisions(store: Store) -> None:
    store.create(P + "a", b"a1")      # 1
    store.create(P + "b", b"b1")      # 2
    store.update(P + "a", b"a2")      # 3
    store.delete(P + "b")             # 4
    store.update(P + "a", b"a3")      # 5
    store.compact(4)
    assert store.compact_revision() == 4
    with pytest.raises(CompactedError) as exc:
        store.list(P, revision=3)
    assert "Expired" in str(exc.value) and exc.value.compact_revision == 4
    assert [(kv.key, kv.value) for kv in store.list(P, revision=4).items] == [(P + "a", b"a2")]
    assert [kv.value for kv in store.list(P, revision=5).items] == [b"a3"]
    store.compact(2)  # behind the compact revision: a no-op
    assert store.compact_revision() == 4
    with pytest.raises(FutureRevisionError):
        store.compact(6)
    store.compact(5)
    assert store.list(P).items == [KV(P + "a", b"a3", 1, 5)]
    assert store.create(P + "b", b"b2").mod_revision == 6


def test_random_history_matches_a_model(make_store: Callable[..., Store]) -> None:
    """Random writes against a dict model; then every readable revision lists
    exactly the model's snapshot, before and after (automatic) compaction."""
    store = make_store(retain_revisions=60, synchronous="NORMAL")
    rng = random.Random(7)
    model: dict[str, KV] = {}
    snapshots: dict[int, dict[str, KV]] = {0: {}}
    names = [f"{P}ns/k{i}" for i in range(12)] + [f"/registry/podsx/k{i}" for i in range(3)]
    for _ in range(250):
        key = rng.choice(names)
        cur = model.get(key)
        roll = rng.random()
        try:
            if cur is None:
                kv = store.create(key, str(rng.random()).encode())
                model[key] = kv
            elif roll < 0.5:
                expected = cur.mod_revision if roll < 0.4 else cur.mod_revision + 1
                kv = store.update(key, str(rng.random()).encode(), expected)
                assert expected == cur.mod_revision
                model[key] = kv
            else:
                store.delete(key, cur.mod_revision)
                del model[key]
        except ConflictError:
            assert cur is not None and roll >= 0.4
            continue
        snapshots[store.current_revision()] = dict(model)
    current = store.current_revision()
    compacted = store.compact_revision()
    assert current - 60 - 6 <= compacted <= current - 60, "automatic compaction keeps ~60"
    for rev in range(1, current + 1):
        snap = snapshots.get(rev)
        if snap is None:
            continue
        if rev < compacted:
            with pytest.raises(CompactedError):
                store.list(P, revision=rev)
            continue
        want = sorted((kv for k, kv in snap.items() if k.startswith(P)), key=lambda kv: kv.key)
        assert store.list(P, revision=rev).items == want, f"at revision {rev}"
    for key in names:
        assert store.get(key) == model.get(key)


def test_async_writes_and_concurrent_conflicts(store: Store) -> None:
    async def main() -> None:
        kvs = await asyncio.gather(*(store.acreate(f"{P}k{i}", b"v") for i in range(40)))
        assert sorted(kv.mod_revision for kv in kvs) == list(range(1, 41))
        base = await store.aget(f"{P}k0")
        assert base is not None
        # Forty racing updates on the same expected revision: exactly one wins.
        results = await asyncio.gather(
            *(store.aupdate(f"{P}k0", b"%d" % i, base.mod_revision) for i in range(40)),
            return_exceptions=True)
        winners = [r for r in results if isinstance(r, KV)]
        assert len(winners) == 1
        assert all(isinstance(r, ConflictError) for r in results if not isinstance(r, KV))
        listed = await store.alist(P, limit=5)
        assert listed.more and listed.revision == 41
        tomb = await store.adelete(f"{P}k0", winners[0].mod_revision)
        assert tomb.value == winners[0].value

    asyncio.run(asyncio.wait_for(main(), 20))


def test_closed_store_refuses_work(make_store: Callable[..., Store]) -> None:
    store = make_store()
    store.create(P + "a", b"v")
    store.close()
    store.close()
    with pytest.raises(StoreClosedError):
        store.create(P + "b", b"v")
    with pytest.raises(StoreClosedError):
        store.get(P + "a")
    with pytest.raises(StoreClosedError):
        store.watch(P)


def test_open_store_picks_backend(tmp_path: Any) -> None:
    with open_store("memory:") as mem:
        assert type(mem).__name__ == "MemoryStore"
    with open_store(f"sqlite://{tmp_path}/a.db") as db:
        assert type(db).__name__ == "SQLiteStore"
        assert db.path == f"{tmp_path}/a.db"
    with pytest.raises(ValueError):
        open_store("sqlite:")
