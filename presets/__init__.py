"""Shipped YAML presets (installed as the package data of rdpg_cli.presets)."""
