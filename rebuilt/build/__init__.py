"""The build: recipes -> plan -> builder, with the checks that judge a plan before it runs, the
features applied to every step (the guard, no-op stamps, host-compiler shim, ccache, proxy,
offline) and what a build leaves behind (logs, manifests, wheels). Imports the core only.
"""
