from __future__ import annotations

import pytest

from voxmesh.errors import UnsupportedLanguage
from voxmesh.mt.languages import LanguageSet, is_chinese, language, normalize_code


@pytest.mark.parametrize(
    ("raw", "code"),
    [("EN", "en"), ("en_US", "en"), ("zh-CN", "zh"), ("zh_TW", "zh-Hant"), ("zt", "zh-Hant"), ("fil", "tl"), ("pt-BR", "pt")],
)
def test_normalize(raw: str, code: str) -> None:
    assert normalize_code(raw) == code


def test_names_for_prompts() -> None:
    assert language("zh").name_zh == "中文"
    assert language("en").name == "English"
    assert is_chinese("zh-TW") and is_chinese("yue") and not is_chinese("ja")
    with pytest.raises(UnsupportedLanguage):
        language("xx")


def test_pairs_and_errors_list_the_supported_languages() -> None:
    langs = LanguageSet(["en", "zh", "ja", "en-GB"])
    assert langs.codes == ("en", "zh", "ja")
    assert ("en", "zh") in langs.pairs() and ("en", "en") not in langs.pairs()
    assert langs.targets("zh") == ("en", "ja")
    assert langs.check_pair("EN", "zh_CN") == ("en", "zh")
    with pytest.raises(UnsupportedLanguage) as err:
        langs.check_pair("en", "fr")
    assert err.value.status == 400 and err.value.param == "target"
    assert "en, zh, ja" in err.value.message
