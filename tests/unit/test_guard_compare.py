"""The guard's comparison: a pip stopped halfway, another copy importing first, and the journal keeping both.

What the snapshot script sees in a real interpreter is in tests/integration/test_guard_halfway.py.
"""

from __future__ import annotations

from rebuilt.build import guard, journal


def test_another_copy_importing_first_is_a_change_even_with_the_same_record():
    was = guard.DistState("2.13.0+cpu", "r", "/venv/site-packages")
    now = guard.DistState("2.13.0+cpu", "r", "/usr/lib/python3/site-packages")
    assert guard.diff({"torch": was}, {"torch": now}) == ["torch"]
    assert guard.change_text("torch", was, now) == (
        "torch 2.13.0+cpu: the copy in /usr/lib/python3/site-packages comes first now")
    unknown = guard.DistState("2.13.0+cpu", "r")  # a journal written without the folder
    assert guard.diff({"torch": unknown}, {"torch": now}) == []
    assert guard.change_text("torch", was, guard.DistState("2.5.1", "r2", now.path)) == "torch 2.13.0+cpu -> 2.5.1"
    assert guard.change_text("torch", was, None) == "torch 2.13.0+cpu -> removed"


def test_the_journal_keeps_what_was_missing_and_stashed_before_the_step(tmp_path):
    state = guard.DistState("1.0", "r", "/site", missing=("func",), stash=("~kg",))
    journal.write(tmp_path, step="x:y", python="/py", before={"pkg": state}, backups={})
    data = journal.read(tmp_path)
    assert journal.before(data) == {"pkg": guard.DistState("1.0", "r", "/site", missing=("func",), stash=("~kg",))}
    assert journal.changed(data, {"pkg": state}) == []
    assert journal.changed(data, {"pkg": guard.DistState("1.0", "r", "/site", missing=("func",),
                                                         stash=("~kg", "~unc"))}) == ["pkg"]
