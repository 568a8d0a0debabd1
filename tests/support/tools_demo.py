"""Tools for the runtime's tests: well-behaved ones, and each way a tool can misbehave."""

from __future__ import annotations

import time
from typing import Any


def add(a: float, b: float) -> float:
    return a + b


def lookup(city: str) -> dict[str, Any]:
    return {"city": city, "population": {"Paris": 2102650, "Lyon": 522250}.get(city)}


def raises(**_: Any) -> None:
    raise RuntimeError("the database is down")


def hangs(**_: Any) -> None:
    time.sleep(3600)


def prints_megabytes(**_: Any) -> int:
    for _ in range(200):
        print("x" * 10_000)
    return 1


def returns_a_set(**_: Any) -> set[int]:
    return {1, 2}


def returns_too_much(**_: Any) -> str:
    return "y" * 100_000


def delete_files(path: str) -> str:
    return f"deleted {path}"
