"""The synthesis pipeline around an engine, driven with the in-memory tone engine."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from voxmesh.api.schemas import SpeechRequest
from voxmesh.engines.base import Span
from voxmesh.engines.tone import ToneEngine
from voxmesh.errors import InvalidRequest, UnknownVoice, UnsupportedLanguage
from voxmesh.text.pronunciation import Pronunciation, PronunciationDictionary
from voxmesh.worker.synthesis import plan_speech, render_segment, synthesize_to_bytes


class StrictTone(ToneEngine):
    """Tone engine with a phoneme inventory, to test override validation."""

    def unknown_phonemes(self, phonemes: str, language: str) -> str:
        return "".join(sorted({c for c in phonemes if c in "<>{}"}))


@pytest.fixture
def engine() -> StrictTone:
    e = StrictTone(sample_rate=16000)
    e.load(1)
    return e


def req(**kw: object) -> SpeechRequest:
    kw.setdefault("model", "tone")
    kw.setdefault("input", "Hello there.")
    return SpeechRequest.model_validate(kw)


EMPTY = PronunciationDictionary()


def test_default_voice_language_and_rate(engine: StrictTone) -> None:
    plan = plan_speech(req(), engine, EMPTY)
    assert plan.voice.parts == (("low", 1.0),)
    assert plan.language == "en"
    assert plan.sample_rate == 16000
    assert plan.engine_speed == 1.0 and plan.tempo == 1.0


def test_unknown_voice_is_404_listing_voices(engine: StrictTone) -> None:
    with pytest.raises(UnknownVoice, match="valid voices: low, high") as info:
        plan_speech(req(voice="nope"), engine, EMPTY)  # "alloy" is an OpenAI name: mapped
    assert info.value.status == 404 and info.value.param == "voice"
    with pytest.raises(UnknownVoice):
        plan_speech(req(voice={"low": 1, "nope": 1}), engine, EMPTY)


def test_unsupported_language_is_400_listing_languages(engine: StrictTone) -> None:
    with pytest.raises(UnsupportedLanguage, match="supported: en, zh, ja") as info:
        plan_speech(req(language="fr"), engine, EMPTY)
    assert info.value.status == 400


def test_language_aliases_and_detection(engine: StrictTone) -> None:
    assert plan_speech(req(language="en-US"), engine, EMPTY).language == "en"
    assert plan_speech(req(language="cmn"), engine, EMPTY).language == "zh"
    assert plan_speech(req(input="我们去重庆。"), engine, EMPTY).language == "zh"
    assert plan_speech(req(input="こんにちは。"), engine, EMPTY).language == "ja"


def test_input_limit(engine: StrictTone) -> None:
    with pytest.raises(InvalidRequest, match="limit is 10"):
        plan_speech(req(input="x" * 11), engine, EMPTY, max_input_chars=10)
    with pytest.raises(InvalidRequest, match="nothing to speak"):
        plan_speech(req(input="\ue000 \ue001"), engine, EMPTY)  # private-use characters are dropped


def test_blend_normalized(engine: StrictTone) -> None:
    plan = plan_speech(req(voice={"low": 3, "high": 1}), engine, EMPTY)
    assert dict(plan.voice.parts) == {"low": 0.75, "high": 0.25}


def test_normalizes_then_chunks_to_engine_limit(engine: StrictTone) -> None:
    text = "I paid $12.50 on 2024-03-15. " + "word " * 80 + "end."
    plan = plan_speech(req(input=text), engine, EMPTY)
    assert plan.segments[0].text == "I paid twelve dollars and fifty cents on March fifteenth, twenty twenty-four."
    assert all(len(s.text) <= engine.capabilities().max_segment_chars for s in plan.segments)
    assert len(plan.segments) >= 3


def test_markup_dictionary_and_overrides_become_phoneme_spans(engine: StrictTone) -> None:
    d = PronunciationDictionary([Pronunciation("voxmesh", phonemes="VOX")])
    plan = plan_speech(req(input="Say [tomato](/tomAto/) and Voxmesh and gif.", pronunciations={"gif": "JIF"}),
                       engine, d)
    (seg,) = plan.segments
    assert seg.spans == (Span("Say "), Span("tomAto", True), Span(" and "), Span("VOX", True),
                         Span(" and "), Span("JIF", True), Span("."))


def test_chinese_pinyin_override_and_markup(engine: StrictTone) -> None:
    plan = plan_speech(req(input="我在[重庆](pinyin:chong2 qing4)的银行。", pronunciations={"银行": "yin2 hang2"}),
                       engine, EMPTY)
    (seg,) = plan.segments
    phon = [s.text for s in seg.spans if s.is_phonemes]
    assert phon == ["ꭧʰʊ↗ŋʨʰi↘ŋ", "i↗nxa↗ŋ"]
    assert seg.spans[-1] == Span("。")


def test_unknown_phoneme_symbols_are_400(engine: StrictTone) -> None:
    with pytest.raises(InvalidRequest, match="symbols '<>'"):
        plan_speech(req(input="a [b](/<x>/) c"), engine, EMPTY)


def test_pinyin_for_english_text_is_400(engine: StrictTone) -> None:
    with pytest.raises(InvalidRequest, match="not Chinese"):
        plan_speech(req(input="go [there](pinyin:na4 li3) now", language="en"), engine, EMPTY)


@pytest.mark.parametrize(("speed", "engine_speed", "tempo"), [
    (1.0, 1.0, 1.0), (0.25, 0.5, 0.5), (4.0, 2.0, 2.0), (1.5, 1.5, 1.0),
])
def test_speed_split_between_engine_and_stretch(engine: StrictTone, speed: float, engine_speed: float,
                                                tempo: float) -> None:
    plan = plan_speech(req(speed=speed), engine, EMPTY)
    assert plan.engine_speed == pytest.approx(engine_speed)
    assert plan.tempo == pytest.approx(tempo)


def test_emotion_rate_multiplies_speed(engine: StrictTone) -> None:
    plan = plan_speech(req(emotion="sad", speed=1.0), engine, EMPTY)
    assert plan.engine_speed == pytest.approx(0.88)
    assert plan.prosody.pitch_semitones < 0


def test_render_resamples_and_speed_shortens(engine: StrictTone) -> None:
    plan = plan_speech(req(input="Hello world, again.", sample_rate=48000), engine, EMPTY)
    slow = render_segment(engine, plan, plan.segments[0], threads=1)
    fast_plan = plan_speech(req(input="Hello world, again.", sample_rate=48000, speed=4.0), engine, EMPTY)
    fast = render_segment(engine, fast_plan, fast_plan.segments[0], threads=1)
    assert slow.dtype == np.float32
    speech_s = len("Hello world, again.") * 0.06
    assert len(slow) / 48000 == pytest.approx(speech_s + 0.3, abs=0.1)  # + sentence pause
    assert len(fast) / 48000 == pytest.approx(len(slow) / 48000 / 4, rel=0.1)


def test_whole_response_encodes(engine: StrictTone) -> None:
    plan = plan_speech(req(input="One. Two, three. Four!", response_format="flac", sample_rate=24000), engine, EMPTY)
    body = synthesize_to_bytes(engine, plan, threads=1)
    assert plan.content_type == "audio/flac"
    with av.open(io.BytesIO(body)) as c:
        frames = list(c.decode(audio=0))
    assert frames[0].sample_rate == 24000
    assert sum(f.samples for f in frames) > 24000


def test_instructions_set_emotion_and_speed(engine: StrictTone) -> None:
    plan = plan_speech(req(instructions="Calm and soothing, read very slowly."), engine, EMPTY)
    assert plan.prosody.rate == 0.92 and plan.engine_speed * plan.tempo == pytest.approx(0.75 * 0.92)
    explicit = plan_speech(req(instructions="Sound sad.", emotion="angry", speed=2.0), engine, EMPTY)
    assert explicit.prosody.rate == 1.10 and explicit.engine_speed * explicit.tempo == pytest.approx(2.2)


def test_openai_voice_names_map_to_the_default_voice(engine: StrictTone) -> None:
    assert plan_speech(req(voice="shimmer"), engine, EMPTY).voice.parts == (("low", 1.0),)
    styled = plan_speech(req(voice_style={"weights": {"low": 1.25, "high": -0.25}, "offset": [0.1] * 256}),
                         engine, EMPTY)  # an enrolled voice's fitted style: signed weights, an offset
    assert styled.voice.parts == (("low", 1.25), ("high", -0.25)) and len(styled.voice.offset) == 256
    with pytest.raises(InvalidRequest, match="cannot clone"):
        plan_speech(req(voice_reference={"audio": "UklGRg==", "transcript": "x"}), engine, EMPTY)
