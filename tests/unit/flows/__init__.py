"""Flow engine tests: pure Python, no database, Redis or network."""
