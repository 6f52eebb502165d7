"""Tools for developing the project.

A real Home Assistant for ``scripts/develop`` and the end-to-end tests.
"""
