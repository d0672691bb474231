"""The declared shapes of a bundle's ``manifest.json`` and of the index kept beside a bundle file.

A bundle comes from another host, perhaps another rebuilt: its manifest is checked against
``MANIFEST`` (``rebuilt.core.shape``) before any of it is used, so a manifest without ``repos`` or
with a list where an object belongs is one error naming the bundle and the key, not a ``KeyError``.
Keys not named here are allowed (a newer rebuilt may add some); those named must have their type.
"""

from __future__ import annotations

from rebuilt.core.shape import ANY, INT, STR, ListOf, MapOf, Obj, nullable, opt

_TEXT = nullable(STR)
_MEMBER = Obj({"sha256": STR, "size": INT})
_REPO = Obj({"url": STR, "commit": STR, "role": STR, "name": STR, "ref": opt(_TEXT), "bundle": _TEXT,
             "prerequisites": opt(ListOf(STR))})
_DEP = Obj({"url": STR, "ref": _TEXT, "commit": opt(_TEXT), "sha256": opt(_TEXT), "kind": opt(STR),
            "member": opt(STR)})
_WHEEL = Obj({"file": STR, "sha256": STR})
_COMPONENT = Obj({"url": STR, "dest_name": opt(_TEXT)})

MANIFEST = Obj({
    "format": STR, "version": INT, "members": MapOf(_MEMBER), "repos": ListOf(_REPO),
    "fetchcontent": MapOf(_DEP), "wheels": ListOf(_WHEEL), "components": opt(ListOf(_COMPONENT)),
    "created": opt(ANY), "recipes": opt(ANY),
})

# ``<bundle>.index.json`` beside a bundle file: what it (and the bundles before it) carried, for the next
# incremental bundle.
INDEX = Obj({"repos": opt(MapOf(ListOf(STR))), "wheels": opt(MapOf(STR)), "downloads": opt(MapOf(STR)),
             "bundles": opt(ListOf(STR))})
