"""Small helpers shared by the modules: files written atomically, hashing, formatting."""
