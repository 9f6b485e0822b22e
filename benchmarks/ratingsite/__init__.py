"""A benchmark-only Django site for ``benchmarks/rating.py``: the real project plus one trivial view.

It lives here, never in ``turingtest/urls.py``, so production serves no benchmark endpoint.
"""
