"""The tools over a build: bench, trace, serve, bisect, bundle. Each imports build and core, never
the CLI.
"""
