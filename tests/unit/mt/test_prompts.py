from __future__ import annotations

from voxmesh.mt.prompts import (
    ChatFormat,
    PromptStyle,
    build_prompt,
    clean_output,
    fewshot_prompt,
    instruction,
)


def test_hymt_templates_verbatim() -> None:
    assert instruction("Hello.", "en", "zh") == "将以下文本翻译为中文，注意只需要输出翻译后的结果，不要额外解释：\n\nHello."
    assert instruction("你好", "zh", "en") == "将以下文本翻译为英语，注意只需要输出翻译后的结果，不要额外解释：\n\n你好"
    assert instruction("Hallo", "de", "fr") == (
        "Translate the following segment into French, without additional explanation.\n\nHallo"
    )


def test_terminology_lists_only_terms_in_the_text() -> None:
    got = instruction("Use the GPU.", "en", "zh", glossary={"GPU": "图形处理器", "CPU": "中央处理器"})
    assert got == (
        "参考下面的翻译：\nGPU 翻译成 图形处理器\n\n"
        "将以下文本翻译为中文，注意只需要输出翻译后的结果，不要额外解释：\nUse the GPU."
    )
    # no relevant term: the plain template
    assert instruction("Hi.", "en", "zh", glossary={"GPU": "x"}).startswith("将以下文本翻译为中文")


def test_context_variant() -> None:
    got = instruction("He left.", "en", "zh", context="Tom was tired.")
    assert got == "Tom was tired.\n参考上面的信息，把下面的文本翻译成中文，注意不需要翻译上文，也不要额外解释：\nHe left."


def test_fewshot_has_examples_and_ends_with_target_label() -> None:
    p = fewshot_prompt("Good night.", "en", "zh", glossary={"night": "夜"})
    assert p is not None
    assert p.endswith("English: Good night.\nChinese:")
    assert "English: night\nChinese: 夜" in p
    assert p.count("English:") == 6
    assert fewshot_prompt("x", "en", "ko") is None  # no Korean in the bank


def test_build_prompt_styles() -> None:
    chat = build_prompt(PromptStyle.CHAT, "Hi.", "en", "zh", chat=ChatFormat(architecture="gemma3"))
    assert chat.text.startswith("<start_of_turn>user\n将以下文本翻译为中文") and chat.text.endswith("<start_of_turn>model\n")
    jinja = ChatFormat(template="{{ bos_token }}[U]{{ messages[0]['content'] }}[A]", bos_token="<s>")
    assert jinja.render("x") == "[U]x[A]"  # BOS is left to the tokenizer
    few = build_prompt(PromptStyle.FEWSHOT, "Hi.", "en", "ko")
    assert few.style is PromptStyle.HYMT  # no examples for the pair: falls back
    assert build_prompt(PromptStyle.FEWSHOT, "Hi.", "en", "zh").stop == ("\n",)


def test_clean_output() -> None:
    assert clean_output("Hello.", ' "你好。"\nThis means hello.') == "你好。"
    assert clean_output("Hello.", "Translation: Bonjour.") == "Bonjour."
    assert clean_output('"Hi"', '"Salut"') == '"Salut"'
    assert clean_output("a\nb", "x\ny\n\nz", ["\n\n"]) == "x\ny"
