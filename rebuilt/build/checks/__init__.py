"""The toolchain doctor: every check that makes a two-hour build fail in its first minute instead.

``catalog`` lists them (``ALL`` for ``inv doctor``, ``PREFLIGHT`` before every build, of which
``for_plan`` keeps those a step of the plan needs); ``needs`` reads the steps' ``needs``/``provides``;
``toolchain``, ``caches``, ``resources`` and ``network`` hold them; ``report`` runs and prints them.
"""
