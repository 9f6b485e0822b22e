"""The project's settings with the benchmark URLconf (adds ``/bench/trivial``); nothing else changes,
so the trivial view runs behind exactly the middleware, session and DRF authentication of the API."""

from turingtest.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.ratingsite.urls"
