"""Per-language stop words, which attacks leave alone: the `stopwordsiso` package (the stopwords-iso
collection, ISO 639-1 codes; 57 languages, every Bible and XTREME language among them but a few)."""

from __future__ import annotations

import functools


@functools.cache
def stop_words(lang: str) -> frozenset[str]:
    """Lower-cased stop words of `lang`; empty where the collection has none (the attack then says so)."""
    import stopwordsiso

    return (
        frozenset(word.lower() for word in stopwordsiso.stopwords(lang))
        if stopwordsiso.has_lang(lang)
        else frozenset()
    )
