"""Wheels of installed distributions: pack (backup), verify, restore."""
