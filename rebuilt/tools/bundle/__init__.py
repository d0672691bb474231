"""Bundles for hosts without network: ``make`` writes one (``inv src.bundle``), ``unpack`` reads one
(``inv src.unbundle``), ``estimate`` answers ``--dry-run``; ``archive`` is the file format,
``gitpack`` the git side, ``wheelhouse`` the Python side. Offline builds: ``rebuilt.build.features.offline``."""
