"""Which patch files a build applies, where they live, what a new one is called and which --add paths count.

Files only: no git, no process (tests/integration/test_patches_edits.py has the edits of real checkouts).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rebuilt.build import patches
from rebuilt.errors import ConfigError, SourceError


@pytest.fixture(autouse=True)
def no_patches_dir_env(monkeypatch):
    monkeypatch.delenv("REBUILT_PATCHES_DIR", raising=False)


def write(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(f"patch {name}\n")


# --------------------------------------------------------------------------- owner, folder


def test_sgl_kernel_patches_are_the_sglang_checkouts():
    assert patches.owner_of("sgl-kernel").name == "sglang"
    assert patches.owner_of("sglang").name == "sglang"


def test_a_recipe_without_a_checkout_has_no_patches():
    with pytest.raises(ConfigError, match="recipe 'extras' has no source checkout, so it has no patches"):
        patches.owner_of("extras")


def test_patches_folder_is_the_projects_unless_a_setting_or_the_environment_names_one(resolve, tmp_path, monkeypatch):
    s = resolve()
    assert patches.patches_dir(s) == tmp_path / "patches"
    monkeypatch.setenv("REBUILT_PATCHES_DIR", "team/patches")
    assert patches.patches_dir(resolve()) == tmp_path / "team" / "patches"  # relative to the project
    monkeypatch.setenv("REBUILT_PATCHES_DIR", str(tmp_path / "abs"))
    assert patches.patches_dir(resolve()) == tmp_path / "abs"
    # the setting comes before the environment variable
    assert patches.patches_dir(resolve({"patches_dir": "mine"})) == tmp_path / "mine"


def test_patches_folder_setting_may_start_with_a_tilde(resolve, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert patches.patches_dir(resolve({"patches_dir": "~/p"})) == tmp_path / "home" / "p"


def test_patches_folder_without_a_project_base_is_the_current_project(resolve, tmp_path, monkeypatch):
    s = resolve()
    s.base = None
    monkeypatch.setenv("REBUILT_PROJECT", str(tmp_path / "proj"))
    assert patches.patches_dir(s) == tmp_path / "proj" / "patches"


# --------------------------------------------------------------------------- which apply


def test_every_patch_of_the_owner_applies_in_file_name_order(resolve, tmp_path):
    write(tmp_path / "patches" / "sglang", "0002-b.patch", "0001-a.patch", "0010-c.patch", "notes.txt")
    write(tmp_path / "patches" / "sgl-kernel", "0001-not-the-owner.patch")
    folder = tmp_path / "patches" / "sglang"
    expected = [folder / "0001-a.patch", folder / "0002-b.patch", folder / "0010-c.patch"]
    assert patches.for_recipe(resolve(), "sglang") == expected
    assert patches.for_recipe(resolve(), "sgl-kernel") == expected  # builds in sglang's checkout


def test_no_patches_folder_means_no_patches(resolve, tmp_path):
    assert patches.for_recipe(resolve(), "sglang") == []
    (tmp_path / "patches").mkdir()
    (tmp_path / "patches" / "sglang").write_text("a file, not a folder\n")
    assert patches.for_recipe(resolve(), "sglang") == []


def test_patches_turned_off_for_a_recipe_or_one_by_one(resolve, tmp_path):
    write(tmp_path / "patches" / "sglang", "0001-a.patch", "0002-b.patch", "0003-c.patch")
    folder = tmp_path / "patches" / "sglang"
    assert patches.for_recipe(resolve({"sglang.patches": False}), "sglang") == []
    assert patches.for_recipe(resolve({"sglang.patches": False}), "sgl-kernel") == []
    skip = resolve({"sglang.patches_skip": ["0002-b.patch"]})
    assert patches.for_recipe(skip, "sgl-kernel") == [folder / "0001-a.patch", folder / "0003-c.patch"]
    assert patches.for_recipe(resolve({"sglang.patches_skip": []}), "sglang") == [
        folder / "0001-a.patch", folder / "0002-b.patch", folder / "0003-c.patch"]


def test_for_recipe_reads_the_settings_of_the_owner_only(tmp_path):
    """A settings object that knows only the owner's keys (what a plan passes): off means off."""

    class Only:
        base = tmp_path

        def __init__(self, values):
            self.values = values

        def get(self, key, default=None):
            return self.values.get(key, default)

    write(tmp_path / "patches" / "sglang", "0001-a.patch", "0002-b.patch")
    folder = tmp_path / "patches" / "sglang"
    assert patches.for_recipe(Only({}), "sgl-kernel") == [folder / "0001-a.patch", folder / "0002-b.patch"]
    assert patches.for_recipe(Only({"sglang.patches_skip": None}), "sglang") == [
        folder / "0001-a.patch", folder / "0002-b.patch"]
    assert patches.for_recipe(Only({"sglang.patches": False}), "sglang") == []
    assert patches.for_recipe(Only({"sgl-kernel.patches": False}), "sgl-kernel") == [
        folder / "0001-a.patch", folder / "0002-b.patch"]


def test_a_recipe_that_is_not_checked_out_yet_says_how_to_fetch_it(resolve, tmp_path):
    s = resolve()
    with pytest.raises(SourceError, match="is not a checkout yet") as err:
        patches.checkout_of(s, "sgl-kernel")
    assert str(tmp_path / "wd" / "src" / "sglang") in str(err.value)
    assert err.value.hint == "inv src.fetch --recipe sglang"
    (tmp_path / "wd" / "src" / "sglang" / ".git").mkdir(parents=True)
    assert patches.checkout_of(s, "sgl-kernel") == tmp_path / "wd" / "src" / "sglang"


# --------------------------------------------------------------------------- the next name


@pytest.mark.parametrize(("name", "slug"), [
    ("fix cuda13 include", "fix-cuda13-include"),
    ("  Fix CUDA 13 / include!! ", "fix-cuda-13-include"),
    ("v1.2_hot-fix", "v1.2_hot-fix"),
    ("..hidden..", "hidden"),
    ("-dash-", "dash"),
    ("Xylophone fix", "xylophone-fix"),
])
def test_new_patch_name_is_a_lower_case_slug_numbered_after_the_last(tmp_path, name, slug):
    assert patches.next_name(tmp_path, name) == tmp_path / f"0001-{slug}.patch"


def test_new_patch_number_follows_the_highest_numbered_patch(tmp_path):
    write(tmp_path, "0001-a.patch", "0007-b.patch", "0003-c.patch")
    assert patches.next_name(tmp_path, "d").name == "0008-d.patch"


def test_files_that_are_not_numbered_patches_do_not_count(tmp_path):
    write(tmp_path, "0002-a.patch", "9999-x.diff", "123-short.patch", "12345-long.patch", "0100-bad name.patch",
          "x0200-a.patch", "0300-a.patch.orig")
    assert patches.next_name(tmp_path, "b").name == "0003-b.patch"


@pytest.mark.parametrize("name", ["", "  ", "!!!", "..", "/-/"])
def test_a_name_without_letters_or_digits_is_refused(tmp_path, name):
    with pytest.raises(ConfigError, match="has no letters or digits") as err:
        patches.next_name(tmp_path, name)
    assert repr(name) in str(err.value) and err.value.hint == "e.g. fix-cuda13-include"


# --------------------------------------------------------------------------- --add


def test_add_paths_relative_or_absolute_inside_the_checkout(tmp_path):
    dest = tmp_path / "co"
    (dest / "csrc").mkdir(parents=True)
    (dest / "csrc" / "new.cu").write_text("x")
    (dest / "NEWS").write_text("x")
    assert patches._named(dest, ["NEWS", str(dest / "csrc" / "new.cu"), "csrc", "csrc/../NEWS"]) == [
        "NEWS", os.path.join("csrc", "new.cu"), "csrc", "NEWS"]
    assert patches._named(dest, []) == []


def test_add_path_with_a_tilde_is_the_home_folders(tmp_path, monkeypatch):
    dest = tmp_path / "co"
    dest.mkdir()
    (dest / "NEWS").write_text("x")
    monkeypatch.setenv("HOME", str(dest))
    assert patches._named(dest, ["~/NEWS"]) == ["NEWS"]


@pytest.mark.parametrize("raw", [".", "..", "../elsewhere.txt", "{tmp}/elsewhere.txt", "{dest}", "{dest}/"])
def test_add_path_outside_the_checkout_is_refused(tmp_path, raw):
    dest = tmp_path / "co"
    dest.mkdir()
    (tmp_path / "elsewhere.txt").write_text("x")
    raw = raw.format(tmp=tmp_path, dest=dest)
    with pytest.raises(ConfigError, match="not a path inside the checkout") as err:
        patches._named(dest, [raw])
    assert str(err.value) == f"--add {raw}: not a path inside the checkout {dest}"
    assert err.value.hint == "name a new file (or folder) of the checkout, relative to it or absolute"


def test_add_path_that_does_not_exist_is_refused_but_a_dangling_link_counts(tmp_path):
    dest = tmp_path / "co"
    dest.mkdir()
    with pytest.raises(ConfigError) as err:
        patches._named(dest, ["missing.txt"])
    assert str(err.value) == f"--add missing.txt: {dest / 'missing.txt'} does not exist"
    assert err.value.hint == "name a file you created in the checkout"
    (dest / "link").symlink_to(dest / "nowhere")
    assert patches._named(dest, ["link"]) == ["link"]


def test_a_folder_whose_name_starts_with_two_dots_is_inside(tmp_path):
    dest = tmp_path / "co"
    (dest / "..data").mkdir(parents=True)
    assert patches._named(dest, ["..data"]) == ["..data"]
