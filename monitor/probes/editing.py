"""Editing probe set files in place: `driftmon probes add / enable / disable / remove`.

A full ruamel round trip (load, change, dump) re-indents sequences, rewrites flow mappings
(`{ a: 1 }` becomes `{a: 1}`) and re-wraps long lines, so it changes lines nobody touched.
Instead the round-trip parse only says *where* things are, and the change is spliced into the
original text: comments, quoting, blank lines and every untouched line stay byte-identical.

Every edit is loaded with the loader before the file is replaced (atomically, through a
temporary file in the same folder), so an edit can never leave an invalid file behind.

Every edit is a read-modify-write, so two edits of one file at once (two `driftmon probes add`
in scripts, say) would both read the old text and the last rename would drop the other's
change. Each edit therefore holds an exclusive lock (`flock`) from before the read until after
the rename. The lock cannot be on the probe file itself: the rename puts a new inode at its
path, so a waiter would get a lock on the replaced file while a newcomer locks the new one.
It is on a sidecar, `.<file name>.lock` in the same folder (hidden, so the loader never reads
it), which the holder deletes before it lets go: probe folders are often kept in git and
should not collect lock files. Deleting a lock file is only safe with the check in `_locked`.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.errors import ProbeFileBusyError, ProbeFileError, UsageError
from monitor.probes import _splice as sp
from monitor.probes._located import parse_yaml
from monitor.probes.loader import parse_probe_text
from monitor.probes.model import ProbeSet

# An edit takes well under a second; ten seconds of waiting means the holder is stuck (or a
# long queue of edits), and the user is better told than left hanging.
LOCK_TIMEOUT = 10.0


def lock_path(file: Path) -> Path:
    """The sidecar lock file of a probe file: `.<name>.lock` next to it."""
    return file.parent / f".{file.name}.lock"


@contextlib.contextmanager
def _locked(file: Path, timeout: float) -> Iterator[None]:
    """Hold the edit lock of `file` for the body; ProbeFileBusyError after `timeout` seconds.

    The holder deletes the lock file before releasing it, so a waiter can end up holding a
    lock on a deleted file while a newcomer creates and locks a new one. A lock therefore only
    counts once the path still names the very file that is locked; otherwise try again. As
    only a holder deletes, and only while holding, at most one process passes that check.
    """
    path = lock_path(file)
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            # O_RDONLY is enough for flock and works on a lock file created by another user;
            # O_NOFOLLOW so a planted symlink cannot make us create a file elsewhere.
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise ProbeFileError(
                f"cannot create the lock file {path.name} to edit it: {exc.strerror}",
                file=str(file),
            ) from None
        try:
            if _try_lock(fd, file) and _still_named(fd, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # not locked, or locked a lock file that its holder has since deleted
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProbeFileBusyError(
                f"another edit of this file holds its lock ({path.name}); waited "
                f"{timeout:g} s. Try again when it has finished",
                file=str(file),
            )
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.05)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # a leftover lock file is harmless, just untidy
            path.unlink()
        os.close(fd)  # releases the lock, after the unlink (see the docstring)


def _try_lock(fd: int, file: Path) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:  # e.g. ENOLCK: a file system without locks
        raise ProbeFileError(
            f"cannot lock the file to edit it: {exc.strerror}", file=str(file)
        ) from None
    return True


def _still_named(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


@dataclass
class _Text:
    file: Path
    text: str
    lines: list[str]  # with their line endings
    eol: str
    data: Any  # the ruamel round-trip document


def _open(file: Path) -> _Text:
    try:
        with open(file, encoding="utf-8", newline="") as handle:  # keep \r\n as written
            text = handle.read()
    except FileNotFoundError:
        raise ProbeFileError("no such probe file", file=str(file)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProbeFileError(f"cannot read the file: {exc}", file=str(file)) from None
    eol = "\r\n" if "\r\n" in text else "\n"
    return _Text(file, text, text.splitlines(keepends=True), eol, parse_yaml(text, file=str(file)))


def _find(doc: _Text, probe_id: str) -> tuple[Any, int]:
    seq = doc.data.get("probes") if isinstance(doc.data, dict) else None
    ids = [p.get("id") for p in seq if isinstance(p, dict)] if isinstance(seq, list) else []
    if probe_id in ids:
        return seq, ids.index(probe_id)
    close = difflib.get_close_matches(probe_id, [str(i) for i in ids], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ProbeFileError(f"no probe {probe_id!r} in this file{hint}", file=str(doc.file))


def set_enabled(
    file: Path,
    probe_id: str,
    enabled: bool,
    *,
    probes_root: Path | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
) -> None:
    """Enable or disable one probe. Changes one line (or adds `enabled:` after its id)."""
    file = Path(file)
    with _locked(file, lock_timeout):
        doc = _open(file)
        seq, index = _find(doc, probe_id)
        item = seq[index]
        lines = list(doc.lines)
        if "enabled" in item:
            if item["enabled"] is enabled:
                return
            line, col = item.lc.value("enabled")
            replaced = sp.replace_bool(lines[line], col, enabled)
            if replaced is None:
                raise ProbeFileError(
                    "enabled must be true or false; fix it by hand",
                    file=str(file),
                    key="enabled",
                    line=line + 1,
                )
            lines[line] = replaced
        else:
            defaults = doc.data.get("defaults")
            current = defaults.get("enabled", True) if isinstance(defaults, dict) else True
            if current is enabled:
                return
            line, col = item.lc.value("id")
            word = "true" if enabled else "false"
            if sp.is_flow(item):  # - {id: x, prompt: ...}: add the key right after the id
                end = sp.flow_scalar_end(lines[line], col)
                if end is None:
                    raise ProbeFileError(
                        "cannot find the end of the id", file=str(file), line=line + 1
                    )
                lines[line] = f"{lines[line][:end]}, enabled: {word}{lines[line][end:]}"
            else:  # a new line right after the id, at the id's column
                key_col = item.lc.key("id")[1]
                lines.insert(line + 1, f"{' ' * key_col}enabled: {word}{doc.eol}")
        _commit(doc, "".join(lines), probes_root)


def remove_probe(
    file: Path,
    probe_id: str,
    *,
    probes_root: Path | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
) -> None:
    """Remove one probe with the comment lines right above it."""
    file = Path(file)
    with _locked(file, lock_timeout):
        doc = _open(file)
        seq, index = _find(doc, probe_id)
        if sp.is_flow(seq):
            raise ProbeFileError(
                "probes is written as a flow list [...]; write it as a block list to edit it",
                file=str(file),
                key="probes",
            )
        lines = list(doc.lines)
        start = sp.item_start(lines, seq, index)
        end = sp.item_end(lines, doc.data, seq, index)
        blank_before = start > 0 and sp.is_blank(lines[start - 1])
        blank_after = end < len(lines) and sp.is_blank(lines[end])
        # Keep the file's spacing: items separated by blank lines stay separated by exactly one.
        if blank_after and (blank_before or (index == 0 and len(seq) > 1)):
            end += 1
        elif blank_before and not blank_after and index == len(seq) - 1 and index > 0:
            start -= 1
        del lines[start:end]
        if len(seq) == 1:  # the last probe: leave `probes: []`, a valid empty set
            key_line, key_col = doc.data.lc.key("probes")
            lines[key_line] = sp.add_empty_flow_seq(lines[key_line], key_col)
        _commit(doc, "".join(lines), probes_root)


def add_probe(
    file: Path,
    probe: Mapping[str, Any],
    *,
    probes_root: Path | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
) -> None:
    """Append a probe (plain data, keys in the order to write) to the file's `probes` list.

    A missing file is created with `set: <file stem>`. The probe is checked as part of the
    file, so a duplicate id or an invalid key leaves the file untouched.
    """
    file = Path(file)
    with _locked(file, lock_timeout):
        if not file.exists():
            text = f"set: {file.stem}\nprobes:\n" + "".join(sp.item_lines(probe, 2, "\n"))
            _commit(_Text(file, "", [], "\n", None), text, probes_root, check_before=False)
            return
        doc = _open(file)
        lines = list(doc.lines)
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += doc.eol
        data = doc.data
        seq = data.get("probes") if isinstance(data, dict) else None
        # A file without `probes:` (new, or only `set:` so far) is not valid until the first add.
        complete = isinstance(data, dict) and "probes" in data
        if not isinstance(data, dict) or "probes" not in data:
            lines += [f"probes:{doc.eol}", *sp.item_lines(probe, 2, doc.eol)]
        elif seq is None or (isinstance(seq, list) and not seq):
            key_line, key_col = _lc(data).key("probes")
            at = key_line
            if seq is not None:
                at, col = _lc(data).value("probes")
                dropped = sp.drop_empty_flow_seq(lines[at], col, doc.eol)
                if dropped is None:
                    raise ProbeFileError(
                        "cannot edit this probes list", file=str(file), line=at + 1
                    )
                lines[at] = dropped
            lines[at + 1 : at + 1] = sp.item_lines(probe, key_col + 2, doc.eol)
        elif sp.is_flow(seq) or not isinstance(seq, list):
            raise ProbeFileError(
                "probes is not a block list; write it as `- id: ...` items to edit it",
                file=str(file),
                key="probes",
            )
        else:
            last = len(seq) - 1
            at = sp.item_end(lines, data, seq, last)
            new = sp.item_lines(probe, sp.dash_col(lines, seq, last), doc.eol)
            spaced = any(
                sp.is_blank(lines[sp.item_start(lines, seq, i) - 1]) for i in range(1, len(seq))
            )
            lines[at:at] = [doc.eol, *new] if spaced else new
        _commit(doc, "".join(lines), probes_root, check_before=complete)


def find_probe_file(sets: list[ProbeSet], probe_id: str, set_name: str | None = None) -> Path:
    """The file defining `probe_id` (or "set/id"); an id in several sets needs `set_name`."""
    if set_name is None and "/" in probe_id:
        set_name, probe_id = probe_id.split("/", 1)
    pool = sets
    if set_name is not None:
        pool = [s for s in sets if s.name == set_name]
        if not pool:
            known = ", ".join(sorted(s.name for s in sets)) or "none"
            raise UsageError(f"no probe set named {set_name!r} (sets: {known})")
    matches = [s for s in pool if any(p.id == probe_id for p in s.probes)]
    if len(matches) == 1:
        return Path(matches[0].file)
    if not matches:
        ids = sorted({p.id for s in pool for p in s.probes})
        close = difflib.get_close_matches(probe_id, ids, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        where = f" in set {set_name!r}" if set_name else ""
        raise UsageError(f"no probe {probe_id!r}{where}{hint}")
    candidates = ", ".join(f"{s.name}/{probe_id} ({s.file})" for s in matches)
    raise UsageError(
        f"probe id {probe_id!r} is in several sets: {candidates}; "
        "name one with --set SET or as SET/ID"
    )


def _commit(
    doc: _Text, new_text: str, probes_root: Path | None, *, check_before: bool = True
) -> None:
    root = probes_root if probes_root is not None else doc.file.parent
    if check_before:  # a file that is already invalid must be fixed first, and says why
        parse_probe_text(doc.text, file=doc.file, probes_root=root)
    try:
        parse_probe_text(new_text, file=doc.file, probes_root=root)
    except ProbeFileError as exc:
        raise ProbeFileError(
            f"not changed: the edit would make it invalid ({exc.problem}; lines as after the edit)",
            file=exc.file,
            key=exc.key,
            line=exc.line,
        ) from None
    _write_atomically(doc.file, new_text)


def _write_atomically(file: Path, text: str) -> None:
    # A temporary file in the same folder, then os.replace: readers see the old or the new
    # file, never half of one. The leading dot keeps the loader from ever picking it up.
    handle, temp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        mode = stat.S_IMODE(file.stat().st_mode) if file.exists() else 0o666 & ~_umask()
        os.chmod(temp, mode)
        os.replace(temp, file)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    # mkstemp creates 0600 files; a new probe file gets the usual permissions instead.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _lc(node: Any) -> Any:
    """ruamel's position record of a node (isinstance narrowing hides it from the type checker)."""
    return node.lc
