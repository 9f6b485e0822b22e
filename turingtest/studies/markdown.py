"""Researcher-written Markdown (instructions, consent) rendered for raters, sanitized.

``markdown`` turns text into HTML; ``nh3`` (ammonia) then keeps only a safe
allow-list of tags and attributes, so a study text can never inject script.
"""

from __future__ import annotations

import markdown as md
import nh3
from django.utils.safestring import SafeString, mark_safe


def render_markdown(text: str) -> SafeString:
    html = md.markdown(text or "", extensions=["extra", "sane_lists"], output_format="html")
    return mark_safe(nh3.clean(html, link_rel="noopener noreferrer nofollow"))  # noqa: S308 - sanitized by nh3
