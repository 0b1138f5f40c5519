from __future__ import annotations

from voxmesh.mt.htmltext import parse_html, translate_html


def upper(texts: list[str]) -> list[str]:
    return [t.upper() for t in texts]


def test_tags_and_attributes_are_kept_verbatim() -> None:
    src = '<p class="x" data-a=\'1\'>Hello <b>big</b> world</p><br/><img src="a.png" alt="cat">'
    assert translate_html(src, upper) == '<p class="x" data-a=\'1\'>HELLO <b>BIG</b> WORLD</p><br/><img src="a.png" alt="cat">'


def test_entities_round_trip_and_whitespace_stays_outside() -> None:
    doc = parse_html("<div>\n  Fish &amp; chips &lt;3\n</div>")
    assert doc.texts == ["Fish & chips <3"]
    assert doc.render(["Poisson & frites <3"]) == "<div>\n  Poisson &amp; frites &lt;3\n</div>"


def test_code_script_and_notranslate_are_not_translated() -> None:
    src = (
        "<p>hi</p><script>if (a < b && c) { x(); }</script><code>a &amp; b</code>"
        '<span translate="no">Brand</span><i class="x notranslate">Name</i><!-- note --><!DOCTYPE html>'
    )
    out = translate_html(src, upper)
    assert out == src.replace("<p>hi</p>", "<p>HI</p>")


def test_unclosed_tags_do_not_leak_skipping() -> None:
    src = "<pre>keep<b>this</pre><p>go</p>"
    assert translate_html(src, upper) == "<pre>keep<b>this</pre><p>GO</p>"


def test_no_text_means_no_call() -> None:
    calls: list[list[str]] = []

    def fn(t: list[str]) -> list[str]:
        calls.append(t)
        return t

    assert translate_html("<br> <hr/>", fn) == "<br> <hr/>"
    assert calls == []
