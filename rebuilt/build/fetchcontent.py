"""What a CMake tree downloads at configure time: every ``FetchContent_Declare`` it can reach.

Reads the text of a checked-out tree without running CMake: the top ``CMakeLists.txt``, the files
it ``include()``s and the folders it ``add_subdirectory()``s, with simple ``set()`` variables
resolved (``${CMAKE_CURRENT_LIST_DIR}``, ``${PROJECT_SOURCE_DIR}``, a ``set(TAG v1.2)`` used later).
Both branches of an ``if()`` are read (a declaration under a condition is still listed, flagged
``conditional``). What it cannot follow is reported with file:line and why, never dropped:
``$ENV{..}`` and unresolved variables, ``ExternalProject_Add``, ``file(DOWNLOAD)``, ``CPMAddPackage``,
an include that is not in the tree, a declaration without a repository or URL.

A dependency that is itself added as a subproject (``add_subdirectory(${dep_SOURCE_DIR})`` as
sgl-kernel does with mscclpp, or ``FetchContent_MakeAvailable``) has its own declarations: they
are listed in ``Scan.subprojects`` so that the caller scans the dependency's tree once it has it.
References: https://cmake.org/cmake/help/latest/module/FetchContent.html (3.26),
https://cmake.org/cmake/help/latest/manual/cmake-language.7.html (syntax).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# CMake's own modules an include() may name without a path: nothing to read in the tree.
BUILTIN_MODULES = {
    "FetchContent", "ExternalProject", "CheckCXXCompilerFlag", "CheckCCompilerFlag", "CheckLanguage",
    "CMakeParseArguments", "CMakePackageConfigHelpers", "GNUInstallDirs", "CheckIncludeFile",
    "CheckIncludeFileCXX", "CheckSymbolExists", "CheckCXXSourceCompiles", "CheckCSourceCompiles", "CTest",
    "GoogleTest", "CMakeDependentOption", "FindPackageHandleStandardArgs", "CheckIPOSupported",
    "CheckFunctionExists", "CheckLibraryExists", "CheckTypeSize", "CMakePrintHelpers", "FeatureSummary",
    "GenerateExportHeader", "ProcessorCount", "CheckCXXSymbolExists", "Dart", "CPack", "CMakeFindDependencyMacro",
}
KEYWORDS = {"GIT_REPOSITORY", "GIT_TAG", "GIT_SHALLOW", "GIT_PROGRESS", "GIT_SUBMODULES", "GIT_SUBMODULES_RECURSE",
            "GIT_REMOTE_NAME", "GIT_CONFIG", "URL", "URL_HASH", "URL_MD5", "SOURCE_DIR", "BINARY_DIR",
            "SOURCE_SUBDIR", "SUBBUILD_DIR", "PATCH_COMMAND", "UPDATE_COMMAND", "UPDATE_DISCONNECTED",
            "DOWNLOAD_EXTRACT_TIMESTAMP", "FIND_PACKAGE_ARGS", "OVERRIDE_FIND_PACKAGE", "EXCLUDE_FROM_ALL",
            "SYSTEM", "QUIET", "TLS_VERIFY", "DOWNLOAD_NO_EXTRACT", "DOWNLOAD_NAME",
            "CONFIGURE_COMMAND", "BUILD_COMMAND", "INSTALL_COMMAND", "TEST_COMMAND", "LOG_DOWNLOAD"}
_VAR = re.compile(r"\$\{([A-Za-z0-9_.+\-/]+)\}")


@dataclass
class Dep:
    name: str                    # as declared (FETCHCONTENT_SOURCE_DIR_<NAME.upper()> overrides it)
    where: str                   # file:line of the declaration
    git_repository: str = ""
    git_tag: str = ""
    url: str = ""
    url_hash: str = ""
    git_submodules: list[str] | None = None   # None: CMake's default, every submodule recursively
    conditional: bool = False

    @property
    def cmake_var(self) -> str:
        return f"FETCHCONTENT_SOURCE_DIR_{self.name.upper()}"


@dataclass
class Problem:
    where: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}: {self.why}"


@dataclass
class Scan:
    root: str
    deps: dict[str, Dep] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    subprojects: list[str] = field(default_factory=list)   # declared deps whose own tree CMake reads


@dataclass
class Command:
    name: str
    args: list[str]
    line: int


def _strip_comments(text: str) -> str:
    """Remove ``#[[ ]]`` block and ``#`` line comments, keeping line numbers and quoted text."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif c == "#":
            m = re.match(r"#\[(=*)\[", text[i:])
            if m:
                end = text.find("]" + m.group(1) + "]", i)
                end = n if end < 0 else end + len(m.group(1)) + 2
                out.append("\n" * text.count("\n", i, end))
                i = end
            else:
                j = text.find("\n", i)
                i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def commands(text: str) -> list[Command]:
    """The command invocations of a CMake file: name, arguments (quotes removed), line."""
    text = _strip_comments(text)
    out: list[Command] = []
    for m in re.finditer(r"(?m)^[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\(", text):
        depth, i, args, cur, quoted = 1, m.end(), [], [], False
        while i < len(text) and depth:
            c = text[i]
            if c == '"':
                j = i + 1
                while j < len(text) and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                cur.append(text[i + 1:j])
                quoted = True
                i = j + 1
                continue
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if not depth:
                    break
            if c.isspace() and depth == 1:
                if cur or quoted:
                    args.append("".join(cur))
                cur, quoted = [], False
            else:
                cur.append(c)
            i += 1
        if cur or quoted:
            args.append("".join(cur))
        out.append(Command(m.group(1).lower(), args, text.count("\n", 0, m.start()) + 1))
    return out


class _Walker:
    def __init__(self, root: Path):
        self.root = root.resolve()
        self.scan = Scan(str(self.root))
        self.vars: dict[str, str] = {"CMAKE_SOURCE_DIR": str(self.root), "PROJECT_SOURCE_DIR": str(self.root)}
        self.module_path: list[str] = []
        self.alternatives: dict[str, list[str]] = {}  # variables set differently in if/else branches
        self.seen: set[Path] = set()

    def where(self, path: Path, line: int) -> str:
        try:
            return f"{path.resolve().relative_to(self.root)}:{line}"
        except ValueError:
            return f"{path}:{line}"

    def expand(self, value: str, path: Path, line: int, what: str) -> str | None:
        """Substitute known variables; None (and a reported problem) when something stays unknown."""
        for name in sorted(set(_VAR.findall(value)) & set(self.alternatives)):
            values = " | ".join(self.alternatives[name])
            self.scan.problems.append(Problem(self.where(path, line), f"{what}: {name} is set under conditions to "
                                              f"{values}; the first is used here (a build that takes another "
                                              "branch needs that one bundled too)"))
        for _ in range(8):
            new = _VAR.sub(lambda m: self.vars.get(m.group(1), m.group(0)), value)
            if new == value:
                break
            value = new
        unknown = _VAR.findall(value) + re.findall(r"\$ENV\{([^}]*)\}", value)
        if unknown:
            self.scan.problems.append(Problem(self.where(path, line), f"{what}: {value!r} uses "
                                              f"{', '.join(sorted(set(unknown)))}, which is not a plain set() here"))
            return None
        return value

    def walk(self, path: Path, source_dir: Path, cond: int = 0) -> None:
        path = path.resolve()
        if path in self.seen:
            return
        self.seen.add(path)
        self.scan.files.append(str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path))
        saved = {k: self.vars.get(k) for k in ("CMAKE_CURRENT_LIST_DIR", "CMAKE_CURRENT_SOURCE_DIR")}
        self.vars["CMAKE_CURRENT_LIST_DIR"] = str(path.parent)
        self.vars["CMAKE_CURRENT_SOURCE_DIR"] = str(source_dir)
        for cmd in commands(path.read_text(encoding="utf-8", errors="replace")):
            if cmd.name == "if":
                cond += 1
            elif cmd.name == "endif":
                cond = max(0, cond - 1)
            else:
                self.command(cmd, path, source_dir, cond)
        for k, v in saved.items():
            if v is None:
                self.vars.pop(k, None)
            else:
                self.vars[k] = v

    def command(self, cmd: Command, path: Path, source_dir: Path, cond: int) -> None:
        conditional = cond > 0
        where = self.where(path, cmd.line)
        a = cmd.args
        if cmd.name == "set" and a:
            values = [v for v in a[1:] if v not in ("PARENT_SCOPE",)]
            if "CACHE" in values:
                values = values[:values.index("CACHE")]
            joined = ";".join(values)
            if _VAR.search(joined) or "$ENV{" in joined:
                expanded = _VAR.sub(lambda m: self.vars.get(m.group(1), m.group(0)), joined)
                if _VAR.search(expanded) or "$ENV{" in expanded:
                    self.vars.pop(a[0], None)  # not known here; a later use is reported there
                    return
                joined = expanded
            if not conditional:
                self.vars[a[0]] = joined
                self.alternatives.pop(a[0], None)
            elif a[0] not in self.vars:
                self.vars[a[0]] = joined
            elif self.vars[a[0]] != joined:  # if/else branches set it differently: CMake decides at configure
                self.alternatives.setdefault(a[0], [self.vars[a[0]]]).append(joined)
        elif cmd.name == "project":
            self.vars["PROJECT_SOURCE_DIR"] = str(source_dir)
        elif cmd.name == "list" and len(a) >= 3 and a[0] == "APPEND" and a[1] == "CMAKE_MODULE_PATH":
            for v in a[2:]:
                e = self.expand(v, path, cmd.line, "CMAKE_MODULE_PATH")
                if e:
                    self.module_path.append(e)
        elif cmd.name == "include" and a:
            self.include(a[0], path, source_dir, cmd.line, cond)
        elif cmd.name == "add_subdirectory" and a:
            self.subdirectory(a[0], path, source_dir, cmd.line, cond)
        elif cmd.name == "fetchcontent_declare" and a:
            self.declare(a, where, path, cmd.line, conditional)
        elif cmd.name == "fetchcontent_populate" and len(a) > 1 and set(a[1:]) & {"GIT_REPOSITORY", "URL"}:
            self.declare(a, where, path, cmd.line, conditional)  # the direct form of FetchContent_Populate
        elif cmd.name == "fetchcontent_makeavailable":
            for name in a:
                if name not in self.scan.subprojects:
                    self.scan.subprojects.append(name)
        elif cmd.name == "externalproject_add":
            self.scan.problems.append(Problem(where, f"ExternalProject_Add({a[0] if a else '?'}) downloads at build "
                                              "time; FETCHCONTENT_SOURCE_DIR_* does not reach it (not bundled)"))
        elif cmd.name == "file" and a and a[0] == "DOWNLOAD":
            self.scan.problems.append(Problem(where, f"file(DOWNLOAD {a[1] if len(a) > 1 else '?'}) downloads at "
                                              "configure time (not bundled)"))
        elif cmd.name in ("cpmaddpackage", "cpmfindpackage"):
            self.scan.problems.append(Problem(where, f"{cmd.name}: CPM packages are not understood (not bundled)"))

    def include(self, arg: str, path: Path, source_dir: Path, line: int, cond: int = 0) -> None:
        if arg in BUILTIN_MODULES:
            return
        target = self.expand(arg, path, line, "include()")
        if target is None:
            return
        candidates = [Path(target)] if Path(target).is_absolute() else [source_dir / target]
        if "/" not in target and not target.endswith(".cmake"):
            candidates = [Path(d) / f"{target}.cmake" for d in self.module_path] + candidates
        for c in candidates:
            if c.is_file():
                self.walk(c, source_dir, cond)
                return
        self.scan.problems.append(Problem(self.where(path, line), f"include({arg}): not found in the tree "
                                          "(a CMake module rebuilt does not know, or a generated file)"))

    def subdirectory(self, arg: str, path: Path, source_dir: Path, line: int, cond: int = 0) -> None:
        m = re.fullmatch(r"\$\{(.+)_SOURCE_DIR\}(/.*)?", arg)
        if m and m.group(1) in self.scan.deps:
            if m.group(1) not in self.scan.subprojects:
                self.scan.subprojects.append(m.group(1))
            return
        target = self.expand(arg, path, line, "add_subdirectory()")
        if target is None:
            return
        folder = Path(target) if Path(target).is_absolute() else source_dir / target
        if (folder / "CMakeLists.txt").is_file():
            self.walk(folder / "CMakeLists.txt", folder, cond)
        else:
            self.scan.problems.append(Problem(self.where(path, line), f"add_subdirectory({arg}): no CMakeLists.txt "
                                              f"at {folder}"))

    def declare(self, a: list[str], where: str, path: Path, line: int, conditional: bool) -> None:
        name, opts, key = a[0], {}, None
        for item in a[1:]:
            if item in KEYWORDS:
                key = item
                opts.setdefault(key, [])
            elif key:
                opts[key].append(item)
        values = {}
        for k in ("GIT_REPOSITORY", "GIT_TAG", "URL", "URL_HASH", "URL_MD5"):
            if opts.get(k):
                values[k] = self.expand(" ".join(opts[k]), path, line, f"{name} {k}")
        dep = Dep(name, where, values.get("GIT_REPOSITORY") or "", values.get("GIT_TAG") or "",
                  values.get("URL") or "", values.get("URL_HASH") or (f"MD5={values['URL_MD5']}"
                                                                     if values.get("URL_MD5") else ""),
                  opts.get("GIT_SUBMODULES"), conditional)
        if not (dep.git_repository or dep.url):
            if "SOURCE_DIR" in opts and not ({"GIT_REPOSITORY", "URL"} & set(opts)):
                self.scan.problems.append(Problem(where, f"{name}: declared with a local SOURCE_DIR only "
                                                  "(nothing to download in that branch)"))
            return  # an unresolved repository/URL was reported by expand()
        if dep.git_repository and not dep.git_tag:
            self.scan.problems.append(Problem(where, f"{name}: GIT_REPOSITORY without GIT_TAG (the remote's "
                                              "default branch: not reproducible; bundled at its current head)"))
        previous = self.scan.deps.get(name)
        if previous and (previous.git_repository, previous.git_tag, previous.url) != \
                (dep.git_repository, dep.git_tag, dep.url):
            self.scan.problems.append(Problem(where, f"{name}: declared again (first at {previous.where}); "
                                              "CMake uses the first declaration, so does the bundle"))
            return
        self.scan.deps.setdefault(name, dep)


def scan(root: Path | str, entry: str = "CMakeLists.txt") -> Scan:
    """Every FetchContent declaration reachable from ``root/entry``, and what could not be followed."""
    root = Path(root)
    walker = _Walker(root)
    top = root / entry
    if not top.is_file():
        walker.scan.problems.append(Problem(str(top), "no CMakeLists.txt: nothing to scan"))
        return walker.scan
    walker.walk(top, root.resolve())
    return walker.scan
