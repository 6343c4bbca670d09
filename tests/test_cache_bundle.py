"""A compiled function's kernels as one file of the kernel cache (jit/bundle.py), in fresh
processes as a user meets them: written by the first process, read in one piece by the
next, and never trusted beyond what each kernel's own key allows."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lucid_codegen.jit import bundle as bundle_mod
from lucid_codegen.jit import cache

ROOT = Path(__file__).resolve().parent.parent

# a compiled step of several kernels (GEMMs, a row kernel, reductions, elementwise updates)
PROGRAM = textwrap.dedent("""
    import json, sys
    import numpy as np
    import lucid
    import lucid.nn.functional as F
    from lucid_codegen.jit import cache
    rng = np.random.default_rng(0)
    x = lucid.tensor(rng.standard_normal((5, 7)).astype(np.float32))
    y = lucid.tensor(rng.integers(0, 3, 5))
    w1 = lucid.tensor(rng.standard_normal((6, 7)).astype(np.float32), requires_grad=True)
    w2 = lucid.tensor(rng.standard_normal((3, 6)).astype(np.float32), requires_grad=True)

    @lucid.compile
    def step(x, y):
        loss = F.cross_entropy(F.linear(F.relu(F.linear(x, w1)), w2), y)
        loss.backward()
        with lucid.no_grad():
            w1.sub_(0.1 * w1.grad)
            w2.sub_(0.1 * w2.grad)
        return loss
    loss = float(step(x, y).item())
    print(json.dumps({"loss": loss, "w1": w1.numpy().astype(float).sum().item(),
                      "stats": cache.stats()}))
""")


def run(cdir: Path) -> dict:
    env = dict(os.environ, LUCID_CACHE_DIR=str(cdir), PYTHONPATH=str(ROOT))
    env.pop("LUCID_CACHE", None)
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True,
                         text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def bundles(cdir: Path) -> list[Path]:
    out = []
    for path in sorted(cdir.glob("*" + cache._SUFFIX)):
        meta = entry_meta(path)
        if meta.get("kind") == "bundle":
            out.append(path)
    return out


def entry_meta(path: Path) -> dict:
    data = path.read_bytes()
    meta_len = cache._HEADER.unpack_from(data)[-1]
    return json.loads(data[cache._HEADER.size:cache._HEADER.size + meta_len])


def members(path: Path) -> dict:
    payload = cache._decode(path.read_bytes(), bytes.fromhex(path.name[:64]))
    assert payload is not None
    return bundle_mod._unpack(payload)


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """A cache filled by one process: (directory, its result, the bundle's members)."""
    cdir = tmp_path_factory.mktemp("bundle-cache")
    result = run(cdir)
    (path,) = bundles(cdir)
    return cdir, result, members(path)


def copy_cache(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_first_process_writes_one_bundle_of_every_kernel_it_loaded(first):
    cdir, result, got = first
    kernels = [p for p in cdir.glob("*" + cache._SUFFIX) if p not in bundles(cdir)]
    assert result["stats"]["compiles"] == len(kernels) >= 4
    # every kernel the step's plans loaded, with the bytes of its own entry (the thread
    # pool's spin kernel loads on the pool's first use: a member if a plan used it)
    assert 4 <= len(got) <= len(kernels)
    (path,) = bundles(cdir)
    meta = entry_meta(path)
    assert meta["members"] == len(got) and "\n" not in meta["label"]   # (one line in ``lucid-ir cache``)
    for digest_hex, obj in got.items():
        own = cache._decode((cdir / (digest_hex + cache._SUFFIX)).read_bytes(), bytes.fromhex(digest_hex))
        assert own == obj


def test_next_process_links_every_member_from_the_bundle(first, tmp_path):
    cdir, result, got = first
    cdir = copy_cache(cdir, tmp_path / "c")
    for digest_hex in got:   # the members' own entries gone: only the bundle can supply them
        (cdir / (digest_hex + cache._SUFFIX)).unlink()
    again = run(cdir)
    assert (again["loss"], again["w1"]) == (result["loss"], result["w1"])
    assert again["stats"]["compiles"] == 0
    assert again["stats"]["hits_disk"] >= len(got)
    assert again["stats"]["disk_writes"] == 0     # the bundle was complete: nothing rewritten


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_damaged_bundle_is_a_miss_and_is_rewritten(first, tmp_path, damage):
    cdir, result, got = first
    cdir = copy_cache(cdir, tmp_path / "c")
    (path,) = bundles(cdir)
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[:len(data) // 2]
    else:
        data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    again = run(cdir)
    assert (again["loss"], again["w1"]) == (result["loss"], result["w1"])
    assert again["stats"]["compiles"] == 0          # every kernel from its own entry
    assert again["stats"]["disk_rejects"] >= 1
    assert members(path) == got                     # written anew, whole


def test_bundle_lacking_a_kernel_is_completed(first, tmp_path):
    cdir, result, got = first
    cdir = copy_cache(cdir, tmp_path / "c")
    (path,) = bundles(cdir)
    dropped = sorted(got)[0]
    partial = [(d, o) for d, o in got.items() if d != dropped]
    cache._write_entry(cdir, path.name, cache._encode(bytes.fromhex(path.name[:64]),
                                                      bundle_mod._pack(partial), {"kind": "bundle"}))
    again = run(cdir)
    assert again["stats"]["compiles"] == 0 and again["stats"]["disk_writes"] == 1
    assert members(path) == got


def test_a_member_under_the_wrong_key_is_never_run(first, tmp_path):
    """A bundle (checksum valid) whose members' objects are swapped: each kernel's
    functions are named after its own key, so another kernel's object fails to link
    and the kernel comes from its own entry; the results stay right."""
    cdir, result, got = first
    cdir = copy_cache(cdir, tmp_path / "c")
    (path,) = bundles(cdir)
    keys = list(got)
    objects = [got[k] for k in keys]
    swapped = list(zip(keys, objects[1:] + objects[:1]))
    cache._write_entry(cdir, path.name, cache._encode(bytes.fromhex(path.name[:64]),
                                                      bundle_mod._pack(swapped), {"kind": "bundle"}))
    again = run(cdir)
    assert (again["loss"], again["w1"]) == (result["loss"], result["w1"])
    assert again["stats"]["compiles"] == 0
    assert again["stats"]["disk_rejects"] >= len(got) - 1


def test_processes_filling_one_cache_at_once_agree(tmp_path):
    """Two processes building the same step into an empty cache at the same time: each
    writes its entries and the bundle atomically; a third finds everything."""
    cdir = tmp_path / "c"
    env = dict(os.environ, LUCID_CACHE_DIR=str(cdir), PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", PROGRAM], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    third = run(cdir)
    assert results[0]["loss"] == results[1]["loss"] == third["loss"]
    assert third["stats"]["compiles"] == 0 and third["stats"]["disk_writes"] == 0
    assert len(bundles(cdir)) == 1
    assert not list(cdir.glob(".*"))    # no temp file left


def test_pack_and_unpack_round_trip_and_reject_bad_layouts():
    objects = [("12" * 32, b"\x7fELF one"), ("34" * 32, b""), ("56" * 32, b"three")]
    payload = bundle_mod._pack(objects)
    assert bundle_mod._unpack(payload) == dict(objects)
    assert bundle_mod._unpack(payload[:-1]) is None
    assert bundle_mod._unpack(payload + b"x") is None
    assert bundle_mod._unpack(b"") is None


def test_bundle_outside_the_disk_cache_writes_nothing(monkeypatch, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from cache_worker import make_module
    monkeypatch.setenv("LUCID_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("LUCID_CACHE", "0")
    b = bundle_mod.Bundle("no disk")
    with b.scope():
        assert cache._BUNDLE.get() is b
        cache.load_or_compile("bundle-test:no-disk", lambda: make_module(3), ["kernel"])
    assert cache._BUNDLE.get() is None
    assert len(b._used) == 1     # recorded, but the disk cache is off:
    b.close()
    assert list(tmp_path.iterdir()) == []
