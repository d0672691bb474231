"""The toolchain doctor: every check that makes a two-hour build fail in its first minute instead.

``checks`` lists them (``ALL`` for ``inv doctor``, ``PREFLIGHT`` before every build);
``toolchain``, ``caches``, ``resources`` and ``network`` hold them; ``report`` runs and prints them.
"""
