"""The honest student: every solution cell as in solutions/ (nothing to replace)."""
