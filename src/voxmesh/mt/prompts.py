"""Translation prompts: HY-MT1.5's instruction templates and few-shot prompts for base models.

Three styles, chosen per model (``PromptStyle``):

* ``CHAT``: HY-MT1.5's instruction (:func:`instruction`) as the single user turn, rendered with
  the model's chat template (the GGUF's ``tokenizer.chat_template`` through Jinja2, or a built-in
  turn format for architectures known to need one). For instruction-tuned models; this is what
  an external OpenAI-compatible server receives too.
* ``HYMT``: the same instruction as raw text with no chat wrapping (HY-MT GGUFs served raw).
* ``FEWSHOT``: for base (pre-trained only) models, which continue text rather than follow
  instructions: a handful of parallel example lines, then ``{Source}: text\\n{Target}:``; the
  answer ends at the newline. Glossary entries become extra example lines; the context becomes
  one leading ``Context:`` line.

Limits: the few-shot bank covers en, zh, ja, fr, de, es (the same sentences in each, so any pair
of those has examples); other pairs fall back to the HY-MT instruction as raw text. Multi-line
input must be split into lines before it reaches a prompt (the service does), because a newline
ends a few-shot answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum

from voxmesh.mt.languages import is_chinese, language, normalize_code

__all__ = [
    "GREEDY",
    "HYMT_SAMPLING",
    "ChatFormat",
    "Prompt",
    "PromptStyle",
    "SamplingParams",
    "build_prompt",
    "clean_output",
    "fewshot_prompt",
    "instruction",
    "relevant_terms",
]


class PromptStyle(Enum):
    CHAT = "chat"
    HYMT = "hymt"
    FEWSHOT = "fewshot"


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_k: int = 20
    top_p: float = 0.6
    repeat_penalty: float = 1.05
    max_new_tokens: int = 256
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


HYMT_SAMPLING = SamplingParams()  # HY-MT1.5's recommended decoding settings
GREEDY = SamplingParams(temperature=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0)  # tests, benchmarks

_ZH_XX = "将以下文本翻译为{target_language}，注意只需要输出翻译后的结果，不要额外解释：\n\n{source_text}"
_XX_XX = "Translate the following segment into {target_language}, without additional explanation.\n\n{source_text}"
_TERMS = "参考下面的翻译：\n{terms}\n\n将以下文本翻译为{target_language}，注意只需要输出翻译后的结果，不要额外解释：\n{source_text}"
_CONTEXT = "{context}\n参考上面的信息，把下面的文本翻译成{target_language}，注意不需要翻译上文，也不要额外解释：\n{source_text}"


def relevant_terms(text: str, glossary: Mapping[str, str] | None) -> list[tuple[str, str]]:
    """Glossary entries whose source term occurs in ``text`` (case-insensitive), longest first.

    Only those go into the prompt: a small model copies every listed term into its answer."""
    if not glossary:
        return []
    low = text.lower()
    hits = [(s, t) for s, t in glossary.items() if s.strip() and s.lower() in low]
    return sorted(hits, key=lambda st: -len(st[0]))


def instruction(
    text: str,
    source: str,
    target: str,
    *,
    glossary: Mapping[str, str] | None = None,
    context: str | None = None,
) -> str:
    """HY-MT1.5's user message for one segment.

    ZH<->XX pairs use the Chinese template with the target's Chinese name; other pairs the English
    template with its English name. The terminology and context variants are Chinese templates
    (as HY-MT ships them) for every pair; with both, the terms lead the contextual template."""
    tgt = language(target)
    terms = relevant_terms(text, glossary)
    term_block = "\n".join(f"{s} 翻译成 {t}" for s, t in terms)
    if context:
        body = _CONTEXT.format(context=context.strip(), target_language=tgt.name_zh, source_text=text)
        return f"参考下面的翻译：\n{term_block}\n\n{body}" if terms else body
    if terms:
        return _TERMS.format(terms=term_block, target_language=tgt.name_zh, source_text=text)
    if is_chinese(source) or is_chinese(target):
        return _ZH_XX.format(target_language=tgt.name_zh, source_text=text)
    return _XX_XX.format(target_language=tgt.name, source_text=text)


# The same four sentences in each language: any pair of these has examples. Written for the
# project; none of them is in the test sets under tests/data/mt.
_BANK: dict[str, tuple[str, ...]] = {
    "en": (
        "Good morning, how are you today?",
        "The train to Shanghai leaves at 8:15.",
        "I bought three apples and a bottle of milk.",
        "Please close the window, it is cold outside.",
    ),
    "zh": (
        "早上好，你今天怎么样？",
        "去上海的火车八点十五分出发。",
        "我买了三个苹果和一瓶牛奶。",
        "请关上窗户，外面很冷。",
    ),
    "ja": (
        "おはようございます、今日はお元気ですか？",
        "上海行きの電車は8時15分に出発します。",
        "りんごを三つと牛乳を一本買いました。",
        "窓を閉めてください、外は寒いです。",
    ),
    "fr": (
        "Bonjour, comment allez-vous aujourd'hui ?",
        "Le train pour Shanghai part à 8 h 15.",
        "J'ai acheté trois pommes et une bouteille de lait.",
        "Fermez la fenêtre, s'il vous plaît, il fait froid dehors.",
    ),
    "de": (
        "Guten Morgen, wie geht es Ihnen heute?",
        "Der Zug nach Shanghai fährt um 8:15 Uhr ab.",
        "Ich habe drei Äpfel und eine Flasche Milch gekauft.",
        "Bitte schließen Sie das Fenster, draußen ist es kalt.",
    ),
    "es": (
        "Buenos días, ¿cómo está usted hoy?",
        "El tren a Shanghái sale a las 8:15.",
        "Compré tres manzanas y una botella de leche.",
        "Por favor, cierre la ventana, hace frío afuera.",
    ),
}


def fewshot_prompt(
    text: str,
    source: str,
    target: str,
    *,
    glossary: Mapping[str, str] | None = None,
    context: str | None = None,
    shots: int = 4,
) -> str | None:
    """A few-shot continuation prompt, or ``None`` when the bank has no examples for the pair."""
    src, tgt = normalize_code(source), normalize_code(target)
    if src not in _BANK or tgt not in _BANK:
        return None
    sname, tname = language(src).name, language(tgt).name
    lines: list[str] = []
    for s, t in list(zip(_BANK[src], _BANK[tgt], strict=True))[:shots]:
        lines += [f"{sname}: {s}", f"{tname}: {t}", ""]
    for s, t in relevant_terms(text, glossary):
        lines += [f"{sname}: {s}", f"{tname}: {t}", ""]
    if context:
        lines.append(f"Context: {' '.join(context.split())}")
    lines += [f"{sname}: {text}", f"{tname}:"]
    return "\n".join(lines)


@dataclass(frozen=True)
class ChatFormat:
    """How to wrap one user turn for a model; ``template`` is a Jinja2 chat template if the GGUF has one.

    ``render`` gives the prompt text *without* a leading BOS token: the tokenizer adds it."""

    template: str | None = None
    bos_token: str = ""
    eos_token: str = ""
    architecture: str = ""

    def render(self, user: str) -> str:
        if self.template:
            out = _render_jinja(self.template, user, self.bos_token, self.eos_token)
        elif self.architecture.startswith("gemma"):
            # Gemma's documented turn format (what its chat template renders).
            out = f"<start_of_turn>user\n{user}<end_of_turn>\n<start_of_turn>model\n"
        else:
            # ChatML: the common default of llama.cpp's server for models without a template.
            out = f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
        if self.bos_token and out.startswith(self.bos_token):
            out = out[len(self.bos_token) :]
        return out


def _render_jinja(template: str, user: str, bos: str, eos: str) -> str:
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # comes with llama-cpp-python

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=[{"role": "user", "content": user}],
        add_generation_prompt=True,
        bos_token=bos,
        eos_token=eos,
    )


@dataclass(frozen=True)
class Prompt:
    """A full prompt; ``text[:head]`` is shared by every prompt of the same style and pair
    (few-shot examples, chat header, instruction), so an engine can keep its KV state."""

    text: str
    style: PromptStyle
    stop: tuple[str, ...] = ()
    head: int = 0


def build_prompt(
    style: PromptStyle,
    text: str,
    source: str,
    target: str,
    *,
    glossary: Mapping[str, str] | None = None,
    context: str | None = None,
    chat: ChatFormat | None = None,
) -> Prompt:
    """The full prompt text for one segment in the given style (few-shot falls back to HYMT),
    with ``head`` marking the part shared with every other segment of the pair: the common
    prefix with a probe prompt, cut back to a line end so tokenization splits cleanly there."""
    prompt = _build(style, text, source, target, glossary=glossary, context=context, chat=chat)
    probe = _build(style, "\x00", source, target, chat=chat).text
    n = 0
    for a, b in zip(prompt.text, probe, strict=False):
        if a != b:
            break
        n += 1
    head = prompt.text.rfind("\n", 0, n) + 1
    return replace(prompt, head=head)


def _build(
    style: PromptStyle,
    text: str,
    source: str,
    target: str,
    *,
    glossary: Mapping[str, str] | None = None,
    context: str | None = None,
    chat: ChatFormat | None = None,
) -> Prompt:
    if style is PromptStyle.FEWSHOT:
        few = fewshot_prompt(text, source, target, glossary=glossary, context=context)
        if few is not None:
            return Prompt(few, style, stop=("\n",))
        style = PromptStyle.HYMT
    user = instruction(text, source, target, glossary=glossary, context=context)
    if style is PromptStyle.CHAT:
        return Prompt((chat or ChatFormat()).render(user), style, stop=("\n\n",))
    return Prompt(user + "\n\n", style, stop=("\n\n",))


_QUOTES = (('"', '"'), ("“", "”"), ("「", "」"), ("'", "'"))
_LABELS = ("Translation:", "翻译：", "译文：", "Answer:")


def clean_output(source_text: str, output: str, stops: Sequence[str] = ()) -> str:
    """The translation inside what a model generated.

    Cuts at the first stop string, drops a leading label ("Translation:") and quotes the source
    did not have, and keeps only the first line when the source is one line (small models often
    add an explanation on the next line)."""
    out = output.lstrip()
    cuts = [i for i in (out.find(stop) for stop in stops if stop) if i >= 0]
    if cuts:
        out = out[: min(cuts)]
    out = out.strip()
    if "\n" not in source_text.strip():
        first = next((line for line in out.splitlines() if line.strip()), "")
        out = first.strip()
    for label in _LABELS:
        if out.startswith(label):
            out = out[len(label) :].strip()
    for left, right in _QUOTES:
        src = source_text.strip()
        if len(out) >= 2 and out.startswith(left) and out.endswith(right) and not src.startswith(left):
            out = out[1:-1].strip()
    return out
