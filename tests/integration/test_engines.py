"""Real engines (Piper, Kokoro): phoneme-level pronunciation control, synthesis, threads, prosody.

Pronunciation is checked at the phoneme level: the exact phoneme string each engine's
encoding path (``segment_phonemes``) hands to the model after the whole text pipeline
(``plan_speech``: normalization, dictionary, per-request overrides, inline markup).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from voxmesh.api.schemas import SpeechRequest
from voxmesh.audio.prosody import apply_prosody, prosody_for
from voxmesh.audio.stitch import trim_silence
from voxmesh.engines.base import Segment, Span, VoiceMix
from voxmesh.engines.kokoro import KokoroEngine
from voxmesh.engines.piper import PiperEngine
from voxmesh.errors import InvalidRequest, UnknownVoice, UnsupportedLanguage
from voxmesh.text.pronunciation import PronunciationDictionary
from voxmesh.worker.synthesis import plan_speech

# Kokoro's Mandarin alphabet (misaki zh): ꭧʰ = ch, ꭧ = zh, x = h, ɕ = x; tones → ↗ ↓ ↘
CHONG2 = "ꭧʰʊ↗ŋ"
ZHONG4 = "ꭧʊ↘ŋ"
HANG2 = "xa↗ŋ"
XING2 = "ɕi↗ŋ"


def _req(**kw: object) -> SpeechRequest:
    kw.setdefault("model", "x")
    return SpeechRequest.model_validate(kw)


def _phonemes_piper(engine: PiperEngine, text: str, dictionary: PronunciationDictionary | None = None,
                    **kw: object) -> str:
    plan = plan_speech(_req(input=text, **kw), engine, dictionary or PronunciationDictionary())
    return " | ".join("".join(engine.segment_phonemes(s)) for s in plan.segments)


def _phonemes_kokoro(engine: KokoroEngine, text: str, dictionary: PronunciationDictionary | None = None,
                     **kw: object) -> str:
    kw.setdefault("voice", "jf_alpha")
    plan = plan_speech(_req(input=text, **kw), engine, dictionary or PronunciationDictionary())
    return " | ".join(engine.segment_phonemes(s) for s in plan.segments)


# -- Mandarin polyphones (kokoro) --------------------------------------------------------------
def test_zh_polyphones_by_default_in_the_g2p(kokoro: KokoroEngine) -> None:
    ph = _phonemes_kokoro(kokoro, "我的朋友在重庆的一家银行工作。")
    assert CHONG2 in ph and ZHONG4 not in ph, ph
    assert "i↗n" + HANG2 in ph and XING2 not in ph, ph


def test_zh_default_dictionary_pins_polyphones(kokoro: KokoroEngine) -> None:
    plan = plan_speech(_req(input="重庆银行", voice="jf_alpha"), kokoro, PronunciationDictionary.default())
    (seg,) = plan.segments
    assert [s.is_phonemes for s in seg.spans] == [True, True]
    assert kokoro.segment_phonemes(seg) == "ꭧʰʊ↗ŋʨʰi↘ŋ i↗nxa↗ŋ"


def test_zh_dictionary_forces_a_reading(kokoro: KokoroEngine) -> None:
    # Force the *other* readings to prove the dictionary path reaches the model input.
    forced = PronunciationDictionary.default().with_overrides({"银行": "yin2 xing2", "重庆": "zhong4 qing4"})
    ph = _phonemes_kokoro(kokoro, "我在重庆的银行。", forced)
    assert "i↗n" + XING2 in ph and HANG2 not in ph, ph
    assert ZHONG4 in ph and CHONG2 not in ph, ph


def test_zh_inline_pinyin_markup(kokoro: KokoroEngine) -> None:
    ph = _phonemes_kokoro(kokoro, "他住在[重庆](pinyin:chong2 qing4)。")
    assert ph.endswith("ꭧʰʊ↗ŋʨʰi↘ŋ."), ph


def test_zh_numbers_are_read_as_words(kokoro: KokoroEngine) -> None:
    ph = _phonemes_kokoro(kokoro, "2024年增长了50%。")
    assert not any(c.isdigit() for c in ph)
    assert ph == kokoro.phonemize("二零二四年增长了百分之五十。", "zh")


# -- English custom words ----------------------------------------------------------------------
def test_en_custom_word_piper(piper: PiperEngine) -> None:
    default = _phonemes_piper(piper, "I like voxmesh.")
    custom = _phonemes_piper(piper, "I like Voxmesh.", pronunciations={"voxmesh": "vˈɑksmɛʃ"})
    assert "vˈɑksmɛʃ" not in default
    assert custom == "aɪ lˈaɪk vˈɑksmɛʃ.", custom


def test_en_dictionary_and_markup_piper(piper: PiperEngine) -> None:
    d = PronunciationDictionary.default().with_overrides({"kubectl": "kjˈuːb kˈʌtəl"})
    ph = _phonemes_piper(piper, "Run kubectl, then say [tomato](/təmˈɑːtoʊ/).", d)
    assert ph == "ɹˈʌn kjˈuːb kˈʌtəl, ðˈɛn sˈeɪ təmˈɑːtoʊ.", ph


def test_en_custom_word_kokoro(kokoro: KokoroEngine) -> None:
    ph = _phonemes_kokoro(kokoro, "I like voxmesh.", pronunciations={"voxmesh": "vˈɑksmɛʃ"})
    assert ph == "I lˈIk vˈɑksmɛʃ.", ph


def test_unknown_phoneme_symbols_rejected(piper: PiperEngine, kokoro: KokoroEngine) -> None:
    with pytest.raises(InvalidRequest, match="does not know"):
        _phonemes_piper(piper, "a word", pronunciations={"word": "ꭧʰʊ↗ŋ"})
    with pytest.raises(InvalidRequest, match="does not know"):
        _phonemes_kokoro(kokoro, "a word", pronunciations={"word": "wɜ˞d☃"})


# -- synthesis ---------------------------------------------------------------------------------
def _seconds(pcm: np.ndarray, rate: int) -> float:
    return len(pcm) / rate


def test_piper_synthesis_speed_and_threads(piper: PiperEngine) -> None:
    seg = Segment((Span("The quick brown fox jumps over the lazy dog."),), "en")
    voice = VoiceMix.single("joe")
    normal = piper.synthesize_segment(seg, voice, 1.0, threads=2)
    fast = piper.synthesize_segment(seg, voice, 2.0, threads=1)
    assert normal.dtype == np.float32 and 0.5 < np.max(np.abs(normal)) <= 1.0
    assert 1.5 < _seconds(normal, 22050) < 5.0
    # speech only (edge silence does not scale). VITS rounds each phoneme id's duration up to
    # whole frames, so length_scale 0.5 gives ~1.6x, not 2x: measured 2.71 s -> 1.70 s.
    speech, speech_fast = trim_silence(normal, 22050), trim_silence(fast, 22050)
    assert 0.45 < _seconds(speech_fast, 22050) / _seconds(speech, 22050) < 0.72
    with pytest.raises(UnknownVoice, match="valid voices: joe"):
        piper.synthesize_segment(seg, VoiceMix.single("amy"), 1.0)
    with pytest.raises(UnsupportedLanguage):
        piper.synthesize_segment(Segment((Span("你好"),), "zh"), voice, 1.0)


def test_narrow_session_runs_concurrently(piper: PiperEngine) -> None:
    """Two threads on the 1-thread session overlap (onnxruntime releases the GIL)."""
    seg = Segment((Span("Two requests share the machine, one core each, at the same time."),), "en")
    voice = VoiceMix.single("joe")
    spans: list[tuple[float, float]] = []

    def run() -> None:
        t0 = time.perf_counter()
        piper.synthesize_segment(seg, voice, 1.0, threads=1)
        spans.append((t0, time.perf_counter()))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (_, a1), (b0, _) = sorted(spans)
    assert b0 < a1, "the second inference only started after the first finished"


def test_kokoro_languages_and_blend(kokoro: KokoroEngine) -> None:
    alpha = VoiceMix.single("jf_alpha")
    blend = VoiceMix((("jf_alpha", 0.5), ("jm_kumo", 0.5)))
    table = kokoro.style_table(blend)
    ref = 0.5 * kokoro.style_table(alpha) + 0.5 * kokoro.style_table(VoiceMix.single("jm_kumo"))
    assert np.allclose(table, ref)
    for lang, text in (("en", "Good morning."), ("zh", "早上好。"), ("ja", "おはようございます。")):
        pcm = kokoro.synthesize_segment(Segment((Span(text),), lang), blend, 1.0, threads=1)
        assert 0.4 < _seconds(pcm, 24000) < 4.0, lang
        assert np.max(np.abs(pcm)) > 0.05
    with pytest.raises(UnknownVoice, match=r"valid voices: .*jf_alpha"):
        kokoro.synthesize_segment(Segment((Span("hi"),), "en"), VoiceMix.single("xf_nobody"), 1.0)
    assert kokoro.phonemize("今日は良い天気です。", "ja")


def _f0_track(pcm: np.ndarray, rate: int) -> np.ndarray:
    """F0 per 60 ms frame (hop 30 ms), NaN where unvoiced: normalized autocorrelation, the
    shortest lag whose peak is within 85 % of the best in 60-400 Hz (avoids octave errors)."""
    frame = int(0.06 * rate)
    lo, hi = int(rate / 400), int(rate / 60)
    track = []
    for i in range(0, len(pcm) - frame, frame // 2):
        x = pcm[i : i + frame].astype(np.float64)
        x = x - x.mean()
        ac = np.correlate(x, x, "full")[frame - 1 :] / (frame - np.arange(frame))
        seg = ac[lo:hi]
        best = seg.max()
        if np.sqrt(np.mean(x**2)) < 0.03 or best < 0.6 * ac[0]:
            track.append(np.nan)
            continue
        peaks = [k for k in range(1, len(seg) - 1)
                 if seg[k] >= seg[k - 1] and seg[k] >= seg[k + 1] and seg[k] >= 0.85 * best]
        track.append(rate / (lo + (peaks[0] if peaks else int(np.argmax(seg)))))
    return np.array(track)


def _semitones(shifted: np.ndarray, original: np.ndarray, rate: int) -> float:
    """Median per-frame pitch change; duration is kept, so frame i is the same sound in both."""
    ratio = _f0_track(shifted, rate) / _f0_track(original, rate)
    ratio = ratio[np.isfinite(ratio)]
    return float(12 * np.log2(np.median(ratio)))


def test_emotions_move_pitch_and_energy_on_real_speech(piper: PiperEngine) -> None:
    """The presets' DSP on real speech: one Piper rendering (VITS samples noise, so two
    renderings differ by +-5 % in length), each preset applied to the same PCM."""
    text = "We walked along the river in the warm evening light and talked about the summer."
    seg = Segment((Span(text),), "en")
    speech = trim_silence(piper.synthesize_segment(seg, VoiceMix.single("joe"), 1.0, threads=2), 22050)
    shift = {}
    energy = {}
    for emotion in ("neutral", "happy", "sad", "angry", "calm"):
        pcm = apply_prosody(speech, 22050, prosody_for(emotion))
        assert len(pcm) == len(speech)
        shift[emotion] = _semitones(pcm, speech, 22050)
        energy[emotion] = float(np.sqrt(np.mean(pcm**2)))
    expected = {"neutral": 0.0, "happy": 2.0, "sad": -2.0, "angry": 1.0, "calm": -1.0}
    for emotion, st in expected.items():
        assert abs(shift[emotion] - st) < 0.5, shift
    assert energy["angry"] > energy["happy"] > energy["neutral"] > energy["calm"] > energy["sad"], energy
    # rate reaches the engine as its speed parameter
    plans = {e: plan_speech(_req(input=text, emotion=e), piper, PronunciationDictionary()) for e in ("happy", "sad")}
    assert plans["happy"].engine_speed == pytest.approx(1.08) and plans["sad"].engine_speed == pytest.approx(0.88)


def test_warm_up_and_capabilities(piper: PiperEngine, kokoro: KokoroEngine) -> None:
    piper.warm_up()
    kokoro.warm_up()
    assert piper.capabilities().sample_rate == 22050 and piper.capabilities().languages == ("en",)
    caps = kokoro.capabilities()
    assert caps.sample_rate == 24000 and caps.languages == ("en", "zh", "ja") and caps.voice_blending
    ids = [v.id for v in kokoro.voices()]
    assert {"jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"} <= set(ids)
    assert len(ids) == kokoro.info_notes()["voice_pack"]["voices"] in (5, 54)  # 54 once `make setup` fetched them


def test_kokoro_loads_zh_and_ja_g2p_in_the_background(kokoro: KokoroEngine, caplog: pytest.LogCaptureFixture) -> None:
    thread = kokoro._warm_g2p_later((("zh", "你好。"), ("ja", "こんにちは。"), ("xx", "no such language")))
    thread.join(60)
    assert not thread.is_alive()
    assert {"zh", "ja"} <= set(kokoro._g2p)
    assert "could not preload the xx G2P" in caplog.text  # logged, not raised: the request reports it
    assert kokoro.phonemize("重庆", "zh")
