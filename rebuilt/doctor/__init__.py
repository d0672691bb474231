"""The toolchain doctor: every check that makes a two-hour build fail in its first minute instead."""
