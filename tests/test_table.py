"""Seqlock tables and the registry under concurrent writers in other processes."""
from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

import shm
from shm.registry import RegistryNotFound
from shm.table import TableNotFound

CTX = mp.get_context("fork")
ROW = np.dtype([("a", "<i8"), ("b", "<f8"), ("c", "<i8"), ("d", "<f8"), ("e", "<i8")] +
               [(f"pad{i}", "<i8") for i in range(11)])   # 128 bytes: a copy spans two cache lines


def _row(k: int):
    return (k, k * 0.5, -k, k * 3.0, k ^ 0x55) + tuple(k + i for i in range(11))


def _table_writer(name, stop, started):
    t = shm.Table.attach(name)
    for i in range(t.slots):           # every slot holds a real row before readers look
        t.write(i, _row(i))
    started.set()
    k = t.slots
    while not stop.is_set():
        for i in range(t.slots):
            t.write(i, _row(k))
            k += 1
        for i in range(t.slots):          # a writer that packs the row's bytes itself
            t.store(t.span(i), np.array([_row(k)], dtype=t.dtype).tobytes())
            k += 1
        idx = np.arange(t.slots)
        rows = np.array([_row(k + i) for i in range(t.slots)], dtype=t.dtype)
        t.write_many(idx, rows)
        k += t.slots
    t.close()


def _consistent(row) -> bool:
    k = int(row["a"])
    return tuple(row.tolist()) == _row(k)


def test_seqlock_never_yields_a_torn_slot(shm_names):
    name = shm_names("table")
    table = shm.Table.create(name, ROW, slots=4)
    stop, started = CTX.Event(), CTX.Event()
    p = CTX.Process(target=_table_writer, args=(name, stop, started))
    p.start()
    assert started.wait(20)
    reader = shm.Table.attach(name, ROW)
    seen = set()
    start_updates = reader.updates
    try:
        for _ in range(20_000):
            row = reader.read(1)
            assert _consistent(row), row
            seen.add(int(row["a"]))
        for _ in range(500):
            for row in reader.read_all():
                assert _consistent(row), row
    finally:
        stop.set()
        p.join(20)
    assert p.exitcode == 0
    assert reader.updates > start_updates and len(seen) > 10, "the writer really ran concurrently"
    reader.close()
    table.close()


def test_table_attach_errors_and_selfdescription(shm_names):
    with pytest.raises(TableNotFound, match="live tables"):
        shm.Table.attach(shm_names("nope"))
    t = shm.Table.create(shm_names("t"), ROW, slots=3)
    other = shm.Table.attach(shm_names("t"))       # no dtype given: read from the header
    assert other.dtype == ROW and other.slots == 3
    with pytest.raises(ValueError):
        shm.Table.create(shm_names("z"), ROW, slots=0)
    other.close()
    t.close()


def _registrar(name, venue, n, out):
    reg = shm.Registry.attach(name)
    out.put([reg.add(venue, f"S{i}", f"S{i}-USDT", "spot", 0.01, 0.001) for i in range(n)])
    reg.close()


def test_registry_concurrent_appends_give_unique_stable_ids(shm_names):
    name = shm_names("registry")
    reg = shm.Registry.create(name, capacity=1024)
    out = CTX.Queue()
    procs = [CTX.Process(target=_registrar, args=(name, v, 100, out)) for v in ("a", "b", "a")]
    for p in procs:
        p.start()
    ids = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    a_ids = [x for x in ids if x][0]
    assert len(reg) == 200, "the two 'a' registrars agree on the same 100 ids"
    assert sorted(set(sum(ids, []))) == list(range(1, 201))
    inst = reg.get(a_ids[5])
    assert (inst.symbol, inst.normalized, inst.market, inst.tick_size) == ("S5", "S5-USDT", "spot", 0.01)
    assert reg.lookup(inst.venue, "S5") == a_ids[5]
    assert reg.lookup("zz", "S5") is None
    with pytest.raises(KeyError, match="not in registry"):
        reg.get(999)
    with pytest.raises(ValueError, match="market"):
        reg.add("a", "X", market="options")
    with pytest.raises(RegistryNotFound):
        shm.Registry.attach(shm_names("missing"))
    reg.close()
