"""Bisection of a component's commits: the search and its state (search), builds per commit (builds),
verdicts (verdict), the loop (run), the table and plot (report), and the flags-to-run driver (driver).
"""
