"""Language codes of the XTREME tasks: ISO 639-1 as used everywhere in xstilts, and the names the hub uses."""

from __future__ import annotations

XNLI = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
PAWSX = ("de", "en", "es", "fr", "ja", "ko", "zh")
UDPOS = (
    "af", "ar", "bg", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu", "id", "it",
    "ja", "kk", "ko", "mr", "nl", "pt", "ru", "ta", "te", "th", "tl", "tr", "ur", "vi", "yo", "zh",
)  # fmt: skip
PANX = (
    "af", "ar", "bg", "bn", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu", "id",
    "it", "ja", "jv", "ka", "kk", "ko", "ml", "mr", "ms", "my", "nl", "pt", "ru", "sw", "ta", "te", "th",
    "tl", "tr", "ur", "vi", "yo", "zh",
)  # fmt: skip
XQUAD = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
MLQA = ("ar", "de", "en", "es", "hi", "vi", "zh")
TYDIQA = ("ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te")
BUCC = ("de", "fr", "ru", "zh")
TATOEBA = (
    "af", "ar", "bg", "bn", "de", "el", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu", "id", "it",
    "ja", "jv", "ka", "kk", "ko", "ml", "mr", "nl", "pt", "ru", "sw", "ta", "te", "th", "tl", "tr", "ur",
    "vi", "zh",
)  # fmt: skip

# XTREME-R (google-research/xtreme `evaluate.py`, XTREME_R_TASK2LANGS): PAWS-X and BUCC dropped, XCOPA,
# LAReQA and Mewsli-X added, and more languages for POS, NER, Tatoeba and XQuAD. evaluate.py lists LAReQA
# with no languages (its own script scores it); its questions are XQuAD-R's, in XQuAD's 11 languages.
XCOPA = ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")
MEWSLIX = ("ar", "de", "en", "es", "fa", "ja", "pl", "ro", "ta", "tr", "uk")
LAREQA = XQUAD
UDPOS_R = (*UDPOS, "lt", "pl", "uk", "wo", "ro")
PANX_R = (*PANX, "qu", "pl", "uk", "az", "lt", "pa", "gu", "ro")
TATOEBA_R = (*TATOEBA, "az", "lt", "pl", "uk", "ro")
XQUAD_R = (*XQUAD, "ro")

# google/xtreme's udpos configs are named by English language name ("udpos.English"). Its configs are
# XTREME's: none exists for a language XTREME-R added, which loads from the original files instead (the
# names keep every config template resolvable, for a hub mirror that adds them).
LANGUAGE_NAMES = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish",
    "fr": "French", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian",
    "ja": "Japanese", "jv": "Javanese", "ka": "Georgian", "kk": "Kazakh", "ko": "Korean", "ml": "Malayalam",
    "mr": "Marathi", "ms": "Malay", "my": "Burmese", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian",
    "sw": "Swahili", "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish",
    "ur": "Urdu", "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
    # XTREME-R's additions (for its POS languages lt, pl, uk, wo, ro: the names of UD's treebanks)
    "az": "Azerbaijani", "gu": "Gujarati", "ht": "Haitian Creole", "lt": "Lithuanian", "pa": "Punjabi",
    "pl": "Polish", "qu": "Quechua", "ro": "Romanian", "uk": "Ukrainian", "wo": "Wolof",
}  # fmt: skip

# Tatoeba (LASER's release and google/xtreme's "tatoeba.<iso3>" configs) uses ISO 639-3 codes.
ISO3 = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell", "en": "eng", "es": "spa",
    "et": "est", "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin", "hu": "hun",
    "id": "ind", "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz", "ko": "kor", "ml": "mal",
    "mr": "mar", "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh", "ta": "tam", "te": "tel", "th": "tha",
    "tl": "tgl", "tr": "tur", "ur": "urd", "vi": "vie", "zh": "cmn",
    # XTREME-R's additions (Tatoeba: az, lt, pl, uk, ro; the rest for completeness)
    "az": "aze", "gu": "guj", "ht": "hat", "lt": "lit", "pa": "pan", "pl": "pol", "qu": "que", "ro": "ron",
    "uk": "ukr", "wo": "wol",
}  # fmt: skip

# google/xtreme spells the Afrikaans POS config "udpos.Afrikans".
UDPOS_CONFIG_NAMES = {**LANGUAGE_NAMES, "af": "Afrikans"}

# TyDiQA ids and its original file names use the language's English name in lower case ("arabic-2387...").
TYDIQA_PREFIX = {lang: LANGUAGE_NAMES[lang].lower() for lang in TYDIQA}


def template_values(lang: str) -> dict[str, str]:
    """Values for the placeholders of a DataRef template: {lang}, {language_name}, {udpos_name} (the hub's
    udpos config names), {tydiqa_name} (TyDiQA's file names) and {iso3} (Tatoeba)."""
    return {
        "lang": lang,
        "language_name": LANGUAGE_NAMES.get(lang, lang),
        "udpos_name": UDPOS_CONFIG_NAMES.get(lang, lang),
        "tydiqa_name": LANGUAGE_NAMES.get(lang, lang).lower(),
        "iso3": ISO3.get(lang, lang),
    }
