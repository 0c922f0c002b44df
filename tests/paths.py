"""Where the tests find the repository and their own files, whichever tier's folder they sit in."""

from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
ROOT_DIR = TESTS_DIR.parent
