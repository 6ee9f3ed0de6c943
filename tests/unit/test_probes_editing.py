"""Editing probe files in place: only the touched lines change; a bad edit changes nothing."""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

from monitor.errors import ProbeFileBusyError, ProbeFileError, UsageError
from monitor.probes.editing import (
    _locked,
    _still_named,
    add_probe,
    find_probe_file,
    lock_path,
    remove_probe,
    set_enabled,
)
from monitor.probes.loader import load_probe_file, load_probe_sets

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "probes"

ORIGINAL = """\
# Probes for the billing team.
set: billing   # owned by @billing
description: "Invoices, quoted on purpose"

defaults:
  params: { temperature: 0 }   # deterministic

probes:
  # The main one.
  - id: acme
    prompt: 'Extract: ACME'     # single quotes kept
    schema: { type: object, properties: { total: { type: number } } }
    expect:
      - { field: total, equals: 1234.5 }

  - id: beta
    enabled: True   # was flaky in May
    prompt: >
      Folded prompt
      on two lines

  - { id: flow, prompt: "inline probe" }

# trailing comment
"""


@pytest.fixture
def probe_file(tmp_path: Path) -> Path:
    path = tmp_path / "billing.yaml"
    path.write_text(ORIGINAL, encoding="utf-8")
    return path


def lines(path: Path) -> list[str]:
    return path.read_bytes().decode("utf-8").splitlines(keepends=True)


def enabled(path: Path) -> dict[str, bool]:
    return {p.id: p.enabled for p in load_probe_file(path, probes_root=path.parent).probes}


def only_temp_free(folder: Path) -> None:
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_disabling_adds_exactly_one_line_after_the_id(probe_file: Path) -> None:
    before = lines(probe_file)
    set_enabled(probe_file, "acme", False)
    at = before.index("  - id: acme\n") + 1
    assert lines(probe_file) == [*before[:at], "    enabled: false\n", *before[at:]]
    assert enabled(probe_file) == {"acme": False, "beta": True, "flow": True}
    only_temp_free(probe_file.parent)


def test_an_existing_enabled_changes_in_place_keeping_its_comment(probe_file: Path) -> None:
    before = lines(probe_file)
    set_enabled(probe_file, "beta", False)
    after = lines(probe_file)
    at = before.index("    enabled: True   # was flaky in May\n")
    assert after == [*before[:at], "    enabled: False   # was flaky in May\n", *before[at + 1 :]]


def test_a_flow_probe_gets_the_key_on_its_own_line(probe_file: Path) -> None:
    before = lines(probe_file)
    set_enabled(probe_file, "flow", False)
    at = before.index('  - { id: flow, prompt: "inline probe" }\n')
    expected = '  - { id: flow, enabled: false, prompt: "inline probe" }\n'
    assert lines(probe_file) == [*before[:at], expected, *before[at + 1 :]]
    assert enabled(probe_file)["flow"] is False


def test_no_change_needed_leaves_the_file_alone(probe_file: Path) -> None:
    stamp = probe_file.stat().st_mtime_ns
    set_enabled(probe_file, "acme", True)
    set_enabled(probe_file, "beta", True)
    assert probe_file.read_text() == ORIGINAL and probe_file.stat().st_mtime_ns == stamp


def test_enabling_against_a_disabled_default(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("defaults: { enabled: false }\nprobes:\n  - id: a\n    prompt: x\n")
    set_enabled(path, "a", True)
    assert path.read_text() == (
        "defaults: { enabled: false }\nprobes:\n  - id: a\n    enabled: true\n    prompt: x\n"
    )


def test_remove_takes_the_item_and_one_separating_blank(probe_file: Path) -> None:
    before = lines(probe_file)
    remove_probe(probe_file, "beta")
    start = before.index("  - id: beta\n")
    assert before[start + 5] == "\n"  # five lines of the item, then its separator
    assert lines(probe_file) == before[:start] + before[start + 6 :]
    assert list(enabled(probe_file)) == ["acme", "flow"]


def test_remove_first_takes_its_comment(probe_file: Path) -> None:
    before = lines(probe_file)
    remove_probe(probe_file, "acme")
    start = before.index("  # The main one.\n")
    end = before.index("  - id: beta\n")
    assert lines(probe_file) == before[:start] + before[end:]


def test_remove_last_keeps_what_follows(probe_file: Path) -> None:
    before = lines(probe_file)
    remove_probe(probe_file, "flow")
    at = before.index('  - { id: flow, prompt: "inline probe" }\n')
    assert lines(probe_file) == before[: at - 1] + before[at:][1:]
    assert lines(probe_file)[-2:] == ["\n", "# trailing comment\n"]


def test_remove_last_at_the_end_of_the_file_takes_the_blank_before(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("probes:\n  - id: a\n    prompt: x\n\n  - id: b\n    prompt: y\n")
    remove_probe(path, "b")
    assert path.read_text() == "probes:\n  - id: a\n    prompt: x\n"


def test_removing_every_probe_leaves_an_empty_valid_set(probe_file: Path) -> None:
    for probe_id in ("beta", "flow", "acme"):
        remove_probe(probe_file, probe_id)
    text = probe_file.read_text()
    assert "probes: []\n" in text and "# Probes for the billing team." in text
    assert load_probe_file(probe_file, probes_root=probe_file.parent).probes == ()


def test_add_appends_in_the_file_style(probe_file: Path) -> None:
    before = lines(probe_file)
    add_probe(
        probe_file,
        {
            "id": "gamma",
            "response_format": "text",
            "prompt": "Is 17077 prime?\nAnswer [Yes] or [No].",
            "extract": "\\[(Yes|No)\\]",
            "expect": [{"equals": "Yes"}],
        },
    )
    at = before.index('  - { id: flow, prompt: "inline probe" }\n') + 1
    added = [
        "\n",
        "  - id: gamma\n",
        "    response_format: text\n",
        "    prompt: |-\n",
        "      Is 17077 prime?\n",
        "      Answer [Yes] or [No].\n",
        "    extract: \\[(Yes|No)\\]\n",
        "    expect:\n",
        "      - {equals: Yes}\n",  # YAML 1.2: a string
    ]
    assert lines(probe_file) == [*before[:at], *added, *before[at:]]
    (probe_set,) = load_probe_sets([probe_file])
    gamma = probe_set.probes[-1]
    assert gamma.messages[0].content == "Is 17077 prime?\nAnswer [Yes] or [No]."
    assert gamma.params == {"temperature": 0}


@pytest.mark.parametrize(
    ("probe", "problem"),
    [
        ({"id": "beta", "prompt": "again"}, "duplicate probe id 'beta'"),
        ({"id": "new", "promt": "typo"}, "did you mean 'prompt'?"),
        ({"id": "new", "prompt": "x", "schema_file": "../../etc/passwd"}, "outside the probes"),
        ({"prompt": "no id"}, "needs an id"),
    ],
)
def test_an_invalid_addition_leaves_the_file_byte_identical(
    probe_file: Path, probe: dict[str, object], problem: str
) -> None:
    with pytest.raises(ProbeFileError) as info:
        add_probe(probe_file, probe)
    assert problem in str(info.value) and "not changed" in str(info.value)
    assert probe_file.read_bytes() == ORIGINAL.encode()
    only_temp_free(probe_file.parent)


def test_add_creates_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "fresh.yaml"
    add_probe(path, {"id": "a", "prompt": "hello"})
    assert path.read_text() == "set: fresh\nprobes:\n  - id: a\n    prompt: hello\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_add_to_an_empty_list_and_to_a_file_without_probes(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("set: e\nprobes: []   # none yet\n")
    add_probe(empty, {"id": "a", "prompt": "x"})
    assert empty.read_text() == "set: e\nprobes:  # none yet\n  - id: a\n    prompt: x\n"
    bare = tmp_path / "bare.yaml"
    bare.write_text("set: b  # no probes key yet")
    add_probe(bare, {"id": "a", "prompt": "x"})
    assert bare.read_text() == "set: b  # no probes key yet\nprobes:\n  - id: a\n    prompt: x\n"


def test_crlf_files_keep_crlf(tmp_path: Path) -> None:
    path = tmp_path / "win.yaml"
    path.write_bytes(ORIGINAL.replace("\n", "\r\n").encode())
    set_enabled(path, "acme", False)
    add_probe(path, {"id": "z", "prompt": "x"})
    data = path.read_bytes()
    assert b"\r\n    enabled: false\r\n" in data and b"\r\n  - id: z\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_a_failed_replace_leaves_the_file_and_no_temp(
    probe_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        set_enabled(probe_file, "acme", False)
    assert probe_file.read_text() == ORIGINAL
    only_temp_free(probe_file.parent)


def test_permissions_are_kept(probe_file: Path) -> None:
    probe_file.chmod(0o640)
    set_enabled(probe_file, "acme", False)
    assert stat.S_IMODE(probe_file.stat().st_mode) == 0o640


def test_an_already_invalid_file_is_not_edited(probe_file: Path) -> None:
    broken = ORIGINAL.replace("prompt: 'Extract: ACME'", "promt: 'Extract: ACME'")
    probe_file.write_text(broken)
    with pytest.raises(ProbeFileError, match=r"billing.yaml:11: probes\[0\].promt: unknown key"):
        set_enabled(probe_file, "beta", False)
    assert probe_file.read_text() == broken


def test_unknown_probe_id_suggests(probe_file: Path) -> None:
    with pytest.raises(ProbeFileError, match="no probe 'bta' in this file; did you mean 'beta'"):
        remove_probe(probe_file, "bta")


def test_edits_check_schema_files_against_the_probes_root(tmp_path: Path) -> None:
    root = tmp_path / "probes"
    shutil.copytree(FIXTURES / "valid", root)
    orders = root / "nested" / "orders.yaml"
    set_enabled(orders, "order-from-file", False, probes_root=root)
    with pytest.raises(ProbeFileError, match="outside the probes folder"):
        set_enabled(orders, "order-inline", False)  # its folder alone is the root: ../ escapes


def test_find_probe_file() -> None:
    sets = load_probe_sets([FIXTURES / "valid"])
    assert find_probe_file(sets, "prime-17077", None) == FIXTURES / "valid" / "chat.yaml"
    assert find_probe_file(sets, "orders/order-inline", None).name == "orders.yaml"
    with pytest.raises(UsageError, match="did you mean 'acme-invoice'"):
        find_probe_file(sets, "acme-invoce", None)
    with pytest.raises(
        UsageError, match=r"no probe set named 'nope' \(sets: basic, chat, orders\)"
    ):
        find_probe_file(sets, "acme-invoice", "nope")


def test_find_probe_file_ambiguous_lists_candidates(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("probes: [{id: same, prompt: x}]\n")
    (tmp_path / "b.yaml").write_text("probes: [{id: same, prompt: y}]\n")
    sets = load_probe_sets([tmp_path])
    with pytest.raises(UsageError) as info:
        find_probe_file(sets, "same", None)
    message = str(info.value)
    assert (
        f"a/same ({tmp_path / 'a.yaml'})" in message
        and f"b/same ({tmp_path / 'b.yaml'})" in message
    )
    assert find_probe_file(sets, "same", "b") == tmp_path / "b.yaml"


# --- the edit lock --------------------------------------------------------------------------


@contextmanager
def held_lock(file: Path) -> Iterator[None]:
    """The file's edit lock, held the way another process's edit holds it."""
    fd = os.open(lock_path(file), os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


EDITS: list[Callable[..., None]] = [
    partial(add_probe, probe={"id": "new", "prompt": "x"}),
    partial(set_enabled, probe_id="acme", enabled=False),
    partial(remove_probe, probe_id="beta"),
]


@pytest.mark.parametrize("edit", EDITS, ids=["add", "disable", "remove"])
def test_an_edit_gives_up_on_a_held_lock_naming_the_file(
    probe_file: Path, edit: Callable[..., None]
) -> None:
    with held_lock(probe_file):
        start = time.monotonic()
        with pytest.raises(ProbeFileBusyError) as info:
            edit(probe_file, lock_timeout=0.2)
        waited = time.monotonic() - start
    assert 0.2 <= waited < 2
    assert str(info.value) == (
        f"{probe_file}: another edit of this file holds its lock (.billing.yaml.lock); "
        "waited 0.2 s. Try again when it has finished"
    )
    assert info.value.file == str(probe_file)
    assert info.value.exit_code == 1  # not a usage error: trying again can work
    assert not isinstance(info.value, UsageError)
    assert probe_file.read_text() == ORIGINAL
    only_temp_free(probe_file.parent)
    edit(probe_file, lock_timeout=0.2)  # once the lock is free, the same edit goes through
    assert not lock_path(probe_file).exists()  # and the lock file is gone with it


def test_an_edit_waits_for_the_lock_then_reads_the_holders_change(probe_file: Path) -> None:
    locked = threading.Event()

    def other_edit() -> None:  # another process's edit, played by a thread
        with _locked(probe_file, timeout=5):
            locked.set()
            time.sleep(0.3)
            probe_file.write_text(
                ORIGINAL.replace("- id: acme\n", "- id: acme\n    enabled: false\n")
            )

    other = threading.Thread(target=other_edit)
    other.start()
    assert locked.wait(5)
    start = time.monotonic()
    add_probe(probe_file, {"id": "new", "prompt": "x"}, lock_timeout=5)
    waited = time.monotonic() - start
    other.join()
    assert waited >= 0.2  # it waited for the holder instead of reading the old text
    assert enabled(probe_file) == {"acme": False, "beta": True, "flow": True, "new": True}
    assert not lock_path(probe_file).exists()


def test_a_lock_on_a_deleted_lock_file_does_not_count(tmp_path: Path) -> None:
    # A holder deletes the lock file before releasing it; a waiter that opened the old file
    # must not take its lock for the edit lock (see _locked).
    path = tmp_path / ".x.yaml.lock"
    old = os.open(path, os.O_RDONLY | os.O_CREAT)
    try:
        assert _still_named(old, path)
        path.unlink()
        assert not _still_named(old, path)
        path.touch()  # a newcomer's lock file: another inode
        assert not _still_named(old, path)
    finally:
        os.close(old)


def test_a_lock_file_left_by_a_crash_is_used_and_removed(probe_file: Path) -> None:
    lock_path(probe_file).touch()  # flock locks die with their process; the file stays
    set_enabled(probe_file, "acme", False, lock_timeout=0.2)
    assert enabled(probe_file)["acme"] is False
    assert not lock_path(probe_file).exists()
