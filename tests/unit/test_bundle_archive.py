"""The bundle file itself: a plain tar whose first member is the manifest (format, version, sha256 and size of
every other member). What is written reads back byte for byte; what could write outside the target folder, a
member the manifest does not describe, and a damaged or cut file are each one message naming the bundle.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from rebuilt.errors import InputError
from rebuilt.tools.bundle import archive

WHOLE = {"repos": [], "wheels": [], "fetchcontent": {}}  # what every bundle's manifest holds besides members


def _files(tmp_path: Path, contents: dict[str, bytes]) -> dict[str, Path]:
    src = tmp_path / "src"
    out = {}
    for i, (name, body) in enumerate(contents.items()):
        path = src / f"f{i}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        out[name] = path
    return out


def _raw(path: Path, members: list[tuple[str, bytes]], listed: dict | None = None, manifest: dict | None = None,
         kinds: dict[str, bytes] | None = None) -> Path:
    """A tar written by hand: the manifest (``manifest`` as is, else one listing ``listed``, by default every
    member as written), then ``members``; ``kinds`` gives a member another tar type (link, folder, device)."""
    if manifest is None:
        manifest = {**WHOLE, "format": archive.FORMAT, "version": archive.VERSION, "members": listed if listed
                    is not None else {n: {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for n, b in members}}
    data = json.dumps(manifest).encode()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, body in [(archive.MANIFEST, data), *members]:
            info = tarfile.TarInfo(name)
            kind = (kinds or {}).get(name)
            if kind is not None:
                info.type, info.linkname = kind, "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
                tar.addfile(info)
            else:
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    return path


def _refused(path: Path, dest: Path) -> InputError:
    with pytest.raises(InputError) as err:
        archive.extract(path, dest)
    assert str(err.value).startswith(f"{path}: "), str(err.value)
    return err.value


# --- writing ------------------------------------------------------------------------------------------------------

BODIES = {"wheels/b-1.0-py3-none-any.whl": b"wheel bytes", "git/a.bundle": b"git bundle bytes",
          "wheels/a-1.0-py3-none-any.whl": b"", "deps/x" * 30: b"a long member name"}


def test_the_manifest_lists_every_member_by_sha256_and_size_beside_the_callers_keys(tmp_path):
    members = _files(tmp_path, BODIES)
    manifest = archive.write(tmp_path / "b.tar", {**WHOLE, "created": "2026-12-07"}, members)
    assert manifest == {**WHOLE, "created": "2026-12-07", "format": "rebuilt-bundle", "version": 1, "members": {
        name: {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)} for name, body in BODIES.items()}}


def test_the_manifest_comes_first_then_the_members_in_name_order(tmp_path):
    out = tmp_path / "b.tar"
    manifest = archive.write(out, WHOLE, _files(tmp_path, BODIES))
    with tarfile.open(out) as tar:
        infos = tar.getmembers()
        assert [i.name for i in infos] == [archive.MANIFEST, *sorted(BODIES)]
        assert json.loads(tar.extractfile(infos[0]).read()) == manifest
        assert {i.name: tar.extractfile(i).read() for i in infos[1:]} == BODIES
    assert archive.read_manifest(out) == manifest


def test_the_bundle_and_its_manifest_are_readable_by_anyone_on_the_host_it_is_carried_to(tmp_path):
    out = tmp_path / "b.tar"
    old = os.umask(0o077)
    try:
        archive.write(out, WHOLE, _files(tmp_path, {"wheels/a.whl": b"x"}))
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    with tarfile.open(out) as tar:
        assert tar.getmember(archive.MANIFEST).mode == 0o644


def test_a_member_is_written_once_as_a_file(tmp_path):
    out = tmp_path / "b.tar"
    archive.write(out, WHOLE, _files(tmp_path, {"wheels/a.whl": b"x"}))
    with tarfile.open(out) as tar:
        assert [(i.name, i.isfile()) for i in tar.getmembers()] == [(archive.MANIFEST, True), ("wheels/a.whl", True)]



def test_a_member_given_as_a_link_to_a_file_is_carried_as_that_files_bytes(tmp_path):
    """A wheel cache may hold links: the bundle carries what the manifest describes, never a link it would refuse."""
    members = _files(tmp_path, {"wheels/a.whl": b"the wheel"})
    link = tmp_path / "link.whl"
    link.symlink_to(members["wheels/a.whl"])
    archive.write(tmp_path / "b.tar", WHOLE, {"wheels/a.whl": link})
    archive.extract(tmp_path / "b.tar", tmp_path / "out")
    assert (tmp_path / "out" / "wheels" / "a.whl").read_bytes() == b"the wheel"
    assert not (tmp_path / "out" / "wheels" / "a.whl").is_symlink()

# --- reading back -------------------------------------------------------------------------------------------------

def test_what_is_written_is_unpacked_byte_for_byte_under_the_target(tmp_path):
    bodies = {**BODIES, "git/deep/er/c.bundle": os.urandom(5 << 19), "git/b.bundle": b"second in git/"}  # 2.5 MiB
    members = _files(tmp_path, bodies)
    members["git/deep/er/c.bundle"].chmod(0o700)
    written = archive.write(tmp_path / "b.tar", WHOLE, members)
    dest = tmp_path / "out"
    assert archive.extract(tmp_path / "b.tar", dest) == written
    got = {p.relative_to(dest).as_posix(): p for p in dest.rglob("*") if p.is_file()}
    assert {n: p.read_bytes() for n, p in got.items()} == bodies
    assert {stat.S_IMODE(p.stat().st_mode) for p in got.values()} == {0o644}  # never an executable


def test_a_member_name_with_a_leading_dot_folder_is_the_same_member(tmp_path):
    path = _raw(tmp_path / "b.tar", [("./wheels/a.whl", b"abc")],
                listed={"wheels/a.whl": {"sha256": hashlib.sha256(b"abc").hexdigest(), "size": 3}})
    archive.extract(path, tmp_path / "out")
    assert (tmp_path / "out" / "wheels" / "a.whl").read_bytes() == b"abc"


# --- the manifest -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("what", ["not a tar", "empty tar", "another first member", "manifest folder", "not json",
                                  "missing file", "compressed"])
def test_a_file_that_is_not_a_bundle_is_named(tmp_path, what):
    path = tmp_path / "b.tar"
    if what == "not a tar":
        path.write_bytes(b"PK\x03\x04 a zip perhaps" * 100)
    elif what == "empty tar":
        tarfile.open(path, "w").close()
    elif what == "another first member":
        with tarfile.open(path, "w") as tar:
            info = tarfile.TarInfo("wheels/a.whl")
            tar.addfile(info, io.BytesIO(b""))
    elif what == "manifest folder":
        _raw(path, [], kinds={archive.MANIFEST: tarfile.DIRTYPE})
    elif what == "compressed":  # a bundle is a plain tar (its members are compressed already)
        whole = archive.write(tmp_path / "whole.tar", WHOLE, {})
        assert whole["members"] == {}
        with tarfile.open(tmp_path / "whole.tar") as plain, tarfile.open(path, "w:gz") as tar:
            for info in plain:
                tar.addfile(info, plain.extractfile(info))
    elif what == "not json":
        with tarfile.open(path, "w") as tar:
            info = tarfile.TarInfo(archive.MANIFEST)
            info.size = 5
            tar.addfile(info, io.BytesIO(b"{not "))
    with pytest.raises(InputError) as err:
        archive.read_manifest(path)
    said = str(err.value)
    if what in ("empty tar", "another first member", "manifest folder"):
        assert said == f"{path}: not a rebuilt bundle (its first member is not manifest.json)"
    else:
        assert said.startswith(f"{path}: not a readable rebuilt bundle (") and said.endswith(")")


@pytest.mark.parametrize("fmt, version", [("rebuilt-bundle", 2), ("other-tool", 1), (None, None)])
def test_another_format_or_version_is_named_with_what_this_rebuilt_reads(tmp_path, fmt, version):
    manifest = {**WHOLE, "members": {}}
    manifest.update({k: v for k, v in (("format", fmt), ("version", version)) if v is not None})
    path = _raw(tmp_path / "b.tar", [], manifest=manifest)
    with pytest.raises(InputError) as err:
        archive.read_manifest(path)
    assert str(err.value) == (f"{path}: format {fmt!r} version {version!r}; "
                              "this rebuilt reads rebuilt-bundle version 1")


@pytest.mark.parametrize("manifest, key", [
    ([], "must hold"), ({"format": "rebuilt-bundle", "version": 1, "members": {}, "wheels": [], "fetchcontent": {}},
                        "repos"),
    ({**WHOLE, "format": "rebuilt-bundle", "version": 1, "members": {"a": {"sha256": "x", "size": "1"}}}, "size"),
])
def test_a_manifest_of_the_wrong_shape_names_the_key_and_says_to_bundle_again(tmp_path, manifest, key):
    path = _raw(tmp_path / "b.tar", [], manifest=manifest)
    with pytest.raises(InputError) as err:
        archive.read_manifest(path)
    assert str(err.value).startswith(f"{path} (manifest.json)") and key in str(err.value)
    assert err.value.hint == "make the bundle again with inv src.bundle (of this rebuilt version)"
    with pytest.raises(InputError):
        archive.extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- members refused ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../escape.txt", "/abs.txt", "a/../../escape.txt", "wheels\\..\\x.whl", ".", "a/.."])
def test_a_member_that_could_land_outside_the_target_is_refused(tmp_path, name):
    path = _raw(tmp_path / "b.tar", [(name, b"x")], listed={name: {"sha256": hashlib.sha256(b"x").hexdigest(),
                                                                   "size": 1}})
    err = _refused(path, tmp_path / "out" / "in")
    assert str(err) == f"{path}: member {name!r} would be written outside the target folder; refused"
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out" / "escape.txt").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE])
def test_a_link_folder_or_device_member_is_refused(tmp_path, kind):
    path = _raw(tmp_path / "b.tar", [("wheels/a.whl", b"")], listed={"wheels/a.whl": {"sha256": "0" * 64, "size": 0}},
                kinds={"wheels/a.whl": kind})
    err = _refused(path, tmp_path / "out")
    assert str(err) == f"{path}: member 'wheels/a.whl' is a link or special file; refused"
    assert not (tmp_path / "out" / "wheels" / "a.whl").exists()


@pytest.mark.parametrize("second", ["wheels/a.whl", "./wheels/a.whl", "manifest.json"])
def test_a_member_twice_or_a_second_manifest_is_refused(tmp_path, second):
    body = b"same bytes"
    digest = {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
    path = _raw(tmp_path / "b.tar", [("wheels/a.whl", body), (second, body)],
                listed={"wheels/a.whl": digest, "manifest.json": digest})
    err = _refused(path, tmp_path / "out")
    shown = "wheels/a.whl" if second != "manifest.json" else "manifest.json"
    assert str(err) == f"{path}: member {shown!r} appears twice; refused (a bundle holds each file once)"


def test_a_member_the_manifest_does_not_list_is_refused(tmp_path):
    path = _raw(tmp_path / "b.tar", [("wheels/a.whl", b"a"), ("wheels/extra.whl", b"e")],
                listed={"wheels/a.whl": {"sha256": hashlib.sha256(b"a").hexdigest(), "size": 1}})
    err = _refused(path, tmp_path / "out")
    assert str(err) == f"{path}: member 'wheels/extra.whl' is not listed in the manifest; refused"
    assert not (tmp_path / "out" / "wheels" / "extra.whl").exists()


def test_a_member_whose_header_declares_another_size_is_refused_before_it_is_written(tmp_path):
    body = b"twelve bytes"
    path = _raw(tmp_path / "b.tar", [("wheels/a.whl", body)],
                listed={"wheels/a.whl": {"sha256": hashlib.sha256(body).hexdigest(), "size": 13}})
    err = _refused(path, tmp_path / "out")
    assert str(err) == f"{path}: member wheels/a.whl declares 12 bytes, the manifest says 13; refused"
    assert err.hint == "copy the bundle again, or make a new one"
    assert not (tmp_path / "out" / "wheels" / "a.whl").exists()


def test_a_corrupted_member_is_named_with_both_digests(tmp_path):
    good, bad = b"the bytes bundled", b"the bytes bundlex"
    path = _raw(tmp_path / "b.tar", [("wheels/ok.whl", good), ("wheels/a.whl", bad)],
                listed={"wheels/ok.whl": {"sha256": hashlib.sha256(good).hexdigest(), "size": len(good)},
                        "wheels/a.whl": {"sha256": hashlib.sha256(good).hexdigest(), "size": len(good)}})
    err = _refused(path, tmp_path / "out")
    assert str(err) == (f"{path}: member wheels/a.whl is corrupted (sha256 {hashlib.sha256(bad).hexdigest()[:16]}..., "
                        f"the manifest says {hashlib.sha256(good).hexdigest()[:16]}...); nothing was unpacked")
    assert err.hint == "copy the bundle again, or make a new one with inv src.bundle"


# --- cut and damaged files ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("absent", [["wheels/b.whl"], ["wheels/b.whl", "wheels/c.whl"],
                                    ["wheels/b.whl", "wheels/c.whl", "wheels/d.whl"]])
def test_members_the_manifest_lists_but_the_file_lacks_are_counted(tmp_path, absent):
    listed = {n: {"sha256": hashlib.sha256(n.encode()).hexdigest(), "size": len(n)} for n in ["wheels/a.whl", *absent]}
    path = _raw(tmp_path / "b.tar", [("wheels/a.whl", b"wheels/a.whl")], listed=listed)
    err = _refused(path, tmp_path / "out")
    more = f" and {len(absent) - 1} more" if len(absent) > 1 else ""
    assert str(err) == (f"{path}: member wheels/b.whl is listed in the manifest but absent (truncated copy?){more}")


def test_a_bundle_cut_inside_a_member_is_one_message(tmp_path):
    whole = archive.write(tmp_path / "whole.tar", WHOLE, _files(tmp_path, {"wheels/a.whl": os.urandom(64 << 10)}))
    assert whole["members"]
    data = (tmp_path / "whole.tar").read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 2])
    err = _refused(cut, tmp_path / "out")
    assert str(err).startswith(f"{cut}: the bundle is truncated or damaged (")
    assert str(err).endswith("); nothing was unpacked")
    assert err.hint == "copy the bundle again, or make a new one with inv src.bundle"
