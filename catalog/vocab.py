"""Flattr's categories and languages (ids and English names, in Flattr's order), as its v2 API
lists them at /rest/v2/categories and /rest/v2/languages."""

from __future__ import annotations

CATEGORIES: tuple[tuple[str, str], ...] = (
    ("text", "Text"), ("images", "Images"), ("video", "Video"), ("audio", "Audio"),
    ("software", "Software"), ("people", "People"), ("rest", "Other"),
)

LANGUAGES: tuple[tuple[str, str], ...] = (
    ("en_GB", "English"), ("sq_AL", "Albanian"), ("ar_DZ", "Arabic"), ("be_BY", "Belarusian"),
    ("bg_BG", "Bulgarian"), ("ca_ES", "Catalan"), ("zh_CN", "Chinese"), ("hr_HR", "Croatian"),
    ("cs_CZ", "Czech"), ("da_DK", "Danish"), ("nl_NL", "Dutch"), ("eo_EO", "Esperanto"),
    ("et_EE", "Estonian"), ("fi_FI", "Finnish"), ("fr_FR", "French"), ("de_DE", "German"),
    ("el_GR", "Greek"), ("iw_IL", "Hebrew"), ("hi_IN", "Hindi"), ("hu_HU", "Hungarian"),
    ("is_IS", "Icelandic"), ("in_ID", "Indonesian"), ("ga_IE", "Irish"), ("it_IT", "Italian"),
    ("ja_JP", "Japanese"), ("ko_KR", "Korean"), ("lv_LV", "Latvian"), ("lt_LT", "Lithuanian"),
    ("mk_MK", "Macedonian"), ("ms_MY", "Malay"), ("mt_MT", "Maltese"), ("no_NO", "Norwegian"),
    ("pl_PL", "Polish"), ("pt_PT", "Portuguese"), ("ro_RO", "Romanian"), ("ru_RU", "Russian"),
    ("sr_RS", "Serbian"), ("sk_SK", "Slovak"), ("sl_SI", "Slovenian"), ("es_ES", "Spanish"),
    ("sv_SE", "Swedish"), ("th_TH", "Thai"), ("tr_TR", "Turkish"), ("uk_UA", "Ukrainian"),
    ("vi_VN", "Vietnamese"),
)

CATEGORY_IDS = frozenset(c for c, _ in CATEGORIES)
LANGUAGE_IDS = frozenset(code for code, _ in LANGUAGES)
