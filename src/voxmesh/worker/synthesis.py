"""The synthesis pipeline the worker server calls: plan a request, render its segments, encode.

Synchronous on purpose: the worker runs :func:`render_segment` in a thread (onnxruntime
releases the GIL) and asks the core scheduler for a thread count before each segment.

    plan = plan_speech(req, engine, dictionary)           # validation + text pipeline, 4xx here
    enc = plan.encoder()
    for seg in plan.segments:
        threads = slot.threads(cost=len(seg.text))         # the core scheduler's grant
        send(enc.feed(render_segment(engine, plan, seg, threads, slot.interrupt)))
    send(enc.close())

plan_speech, in order
    1. voice: ``"default"`` -> the engine's first voice; a mapping -> a weighted blend (engines
       with ``voice_blending``); unknown ids -> :class:`UnknownVoice` (404) listing valid ones.
    2. language: ``req.language`` (``en-US`` -> ``en``, ``cmn``/``zh-CN`` -> ``zh``), or when
       absent detected from the script (kana -> ja, Han -> zh, when the engine speaks it),
       else the engine's first language; unsupported -> :class:`UnsupportedLanguage` (400).
    3. input length against ``max_input_chars`` (400).
    4. inline markup ``[word](/phonemes/)`` / ``[词](pinyin:...)`` is cut out and held as
       placeholders (private-use characters, one per markup, atomic for the next steps).
    5. normalization (:mod:`voxmesh.text.normalize`) of the plain text.
    6. chunking to the engine's ``max_segment_chars`` (:mod:`voxmesh.text.chunking`).
    7. per chunk: dictionary + per-request overrides (:mod:`voxmesh.text.pronunciation`) and
       placeholders become phoneme spans; every phoneme span is checked against the engine's
       phoneme inventory (400 naming the unknown symbols).
    8. prosody: emotion preset (:mod:`voxmesh.audio.prosody`); rate x speed is split into an
       engine speed within [0.5, 2.0] and a residual time stretch for the rest of 0.25-4.0.

render_segment: engine -> trim edge silence -> residual time stretch -> pitch + gain ->
pause by punctuation -> resample to ``plan.sample_rate`` (default: the engine's rate).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import numpy as np

from voxmesh.api.instructions import parse_instructions
from voxmesh.api.openai_voices import map_openai_voice
from voxmesh.api.schemas import SpeechRequest
from voxmesh.audio.encoding import CONTENT_TYPES, StreamEncoder, make_encoder
from voxmesh.audio.prosody import Prosody, apply_prosody, blend_voice, prosody_for, time_stretch
from voxmesh.audio.resample import SUPPORTED_RATES, resample
from voxmesh.audio.stitch import pause_after, trim_silence, with_pause
from voxmesh.engines.base import Interrupt, Pcm, Reference, Segment, Span, TtsEngine, VoiceMix
from voxmesh.errors import InvalidRequest, UnknownVoice, UnsupportedFormat, UnsupportedLanguage
from voxmesh.observability.stages import StageTimes, bound
from voxmesh.text.chunking import chunk_text
from voxmesh.text.normalize import normalize
from voxmesh.text.pronunciation import Marked, Pronunciation, PronunciationDictionary, parse_markup

__all__ = ["ENGINE_SPEED_RANGE", "SpeechPlan", "plan_speech", "render_all", "render_segment", "synthesize_to_bytes"]

ENGINE_SPEED_RANGE = (0.5, 2.0)
_PUA = 0xE000
_PUA_MAX = 0xF8FF
_PLACEHOLDER = re.compile("([\ue000-\uf8ff])")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_LANG_ALIASES = {"cmn": "zh", "zho": "zh", "chi": "zh", "eng": "en", "jpn": "ja", "jp": "ja"}


@dataclass(frozen=True)
class SpeechPlan:
    engine: str
    segments: tuple[Segment, ...]
    voice: VoiceMix
    language: str
    engine_speed: float
    tempo: float
    prosody: Prosody
    native_rate: int
    sample_rate: int
    response_format: str
    stream: bool
    input_chars: int

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.response_format]

    def encoder(self) -> StreamEncoder:
        return make_encoder(self.response_format, self.sample_rate, streaming=self.stream)


def _resolve_voice(req: SpeechRequest, engine: TtsEngine, language: str) -> VoiceMix:
    voices = engine.voices()
    valid = [v.id for v in voices]
    default_for = getattr(engine, "default_voice", None)  # engines with a voice per language
    default = default_for(language) if default_for is not None else voices[0].id
    if req.voice_reference is not None:
        if not engine.capabilities().voice_cloning:
            raise InvalidRequest(f"engine {engine.name} cannot clone a reference voice", param="voice")
        try:
            wav = base64.b64decode(req.voice_reference.audio, validate=True)
        except ValueError as exc:
            raise InvalidRequest("voice_reference.audio must be base64", param="voice_reference") from exc
        return VoiceMix(((voices[0].id, 1.0),), reference=Reference(wav, req.voice_reference.transcript))
    if req.voice_style is not None:
        if not engine.capabilities().voice_blending:
            raise InvalidRequest(f"engine {engine.name} cannot take a voice style (enrolled voices need kokoro)",
                                 param="voice")
        parts: tuple[tuple[str, float], ...] = tuple(req.voice_style.weights.items())
    elif isinstance(req.voice, str):
        name = default if req.voice == "default" else req.voice
        name = map_openai_voice(name, valid, getattr(engine, "openai_voices", {}), default) or name
        parts = ((name, 1.0),)
    else:
        if len(req.voice) > 1 and not engine.capabilities().voice_blending:
            raise InvalidRequest(f"engine {engine.name} cannot blend voices; give one voice id of: "
                                 f"{', '.join(valid)}", param="voice")
        total = sum(req.voice.values())
        parts = tuple((name, w / total) for name, w in req.voice.items())
    for name, _ in parts:
        if name not in valid:
            raise UnknownVoice(f"unknown voice {name!r} for {engine.name}; valid voices: {', '.join(valid)}",
                               param="voice")
    return VoiceMix(parts, tuple(req.voice_style.offset) if req.voice_style is not None else ())


def _resolve_language(req: SpeechRequest, engine: TtsEngine) -> str:
    supported = engine.capabilities().languages
    if req.language:
        lang = req.language.strip().lower().replace("_", "-").split("-")[0]
        lang = _LANG_ALIASES.get(lang, lang)
        if lang not in supported:
            raise UnsupportedLanguage(f"language {req.language!r} is not supported by {engine.name}; "
                                      f"supported: {', '.join(supported)}", param="language")
        return lang
    if "ja" in supported and _KANA.search(req.input):
        return "ja"
    if "zh" in supported and _HAN.search(req.input):
        return "zh"
    return supported[0]


def _check_phonemes(engine: TtsEngine, pron: Pronunciation, phonemes: str, language: str) -> None:
    check = getattr(engine, "unknown_phonemes", None)  # engines predating the method accept all
    unknown = check(phonemes, language) if check is not None else ""
    if unknown:
        raise InvalidRequest(
            f"pronunciation of {pron.word!r} uses symbols {unknown!r} that the {engine.name} model does not "
            "know; write it in the engine's phoneme alphabet", param="pronunciations")


def _spans(chunk: str, marked: list[Pronunciation], dictionary: PronunciationDictionary,
           engine: TtsEngine, language: str) -> tuple[Span, ...]:
    spans: list[Span] = []

    def add(pron: Pronunciation) -> None:
        phonemes = pron.resolve(language)
        _check_phonemes(engine, pron, phonemes, language)
        spans.append(Span(phonemes, is_phonemes=True))

    for part in _PLACEHOLDER.split(chunk):
        if not part:
            continue
        if _PLACEHOLDER.fullmatch(part):
            add(marked[ord(part) - _PUA])
            continue
        for piece in dictionary.apply(part):
            if isinstance(piece, Marked):
                add(piece.pron)
            else:
                spans.append(Span(piece))
    return tuple(spans)


def plan_speech(req: SpeechRequest, engine: TtsEngine, dictionary: PronunciationDictionary,
                *, max_input_chars: int = 20_000) -> SpeechPlan:
    caps = engine.capabilities()
    language = _resolve_language(req, engine)
    voice = _resolve_voice(req, engine, language)
    if len(req.input) > max_input_chars:
        raise InvalidRequest(f"input is {len(req.input)} characters; the limit is {max_input_chars}: "
                             "split the text or submit a long-text job", param="input")
    if req.response_format not in CONTENT_TYPES:
        raise UnsupportedFormat(f"unknown response_format {req.response_format!r}", param="response_format")
    sample_rate = req.sample_rate or caps.sample_rate
    if sample_rate not in SUPPORTED_RATES and sample_rate != caps.sample_rate:
        raise InvalidRequest(f"sample_rate must be one of {SUPPORTED_RATES}", param="sample_rate")

    marked: list[Pronunciation] = []
    text_parts: list[str] = []
    for piece in parse_markup(req.input):
        if isinstance(piece, Marked):
            if _PUA + len(marked) > _PUA_MAX:
                raise InvalidRequest("too many inline pronunciations (at most 6400)", param="input")
            text_parts.append(f" {chr(_PUA + len(marked))} ")
            marked.append(piece.pron)
        else:
            text_parts.append(normalize(_PLACEHOLDER.sub(" ", piece), language))
    if marked and not caps.phoneme_input:
        raise InvalidRequest(f"engine {engine.name} does not take phoneme input", param="input")
    text = re.sub(r"[ \t]+", " ", "".join(text_parts))
    # Placeholders were padded with spaces so they stay whole words; put punctuation back
    # against them ("[x](/../)." must not become "x ." with a pause-less gap).
    text = re.sub(r"([\ue000-\uf8ff]) (?=[.,!?;:。，！？；：、])", r"\1", text)

    pron_dict = dictionary.with_overrides(req.pronunciations)
    if not caps.phoneme_input and len(pron_dict):
        pron_dict = PronunciationDictionary()
    segments = []
    for chunk in chunk_text(text, caps.max_segment_chars):
        spans = _spans(chunk, marked, pron_dict, engine, language)
        if spans:
            segments.append(Segment(spans, language))
    if not segments:
        raise InvalidRequest("input has nothing to speak: give some words", param="input")

    hints = parse_instructions(req.instructions)
    prosody = prosody_for(hints.emotion if req.emotion == "neutral" and hints.emotion else req.emotion)
    if caps.voice_blending:
        female = frozenset(v.id for v in engine.voices() if v.gender == "female")
        voice = blend_voice(voice, prosody, female)
    total_speed = min(4.0, max(0.25, req.speed * hints.speed)) * prosody.rate
    lo, hi = ENGINE_SPEED_RANGE
    engine_speed = min(hi, max(lo, total_speed))
    return SpeechPlan(
        engine=engine.name,
        segments=tuple(segments),
        voice=voice,
        language=language,
        engine_speed=engine_speed,
        tempo=total_speed / engine_speed,
        prosody=prosody,
        native_rate=caps.sample_rate,
        sample_rate=sample_rate,
        response_format=req.response_format,
        stream=req.stream,
        input_chars=len(req.input),
    )


def render_segment(engine: TtsEngine, plan: SpeechPlan, segment: Segment, threads: int | None,
                   interrupt: Interrupt | None = None, times: StageTimes | None = None) -> Pcm:
    """Mono float32 PCM at ``plan.sample_rate`` for one segment, pause included
    (:class:`~voxmesh.engines.base.SegmentInterrupted` if ``interrupt`` stops the engine).

    ``times`` gets the segment's ``g2p`` (reported by the engine), ``inference`` (the engine's
    call minus its g2p) and ``prosody`` (everything after the model) seconds."""
    rate = plan.native_rate
    if times is None:
        times = StageTimes()
    g2p_before = times.seconds["g2p"]
    t0 = times.clock()
    with bound(times):
        if times.fault is not None and times.fault.stage == "inference" and times.fault.delay_s > 0:
            times.fault.sleep(times.fault.delay_s)
        pcm = engine.synthesize_segment(segment, plan.voice, plan.engine_speed, threads=threads,
                                        interrupt=interrupt)
    times.add("inference", times.clock() - t0 - (times.seconds["g2p"] - g2p_before))
    with times.time("prosody"):
        pcm = trim_silence(pcm, rate)
        if abs(plan.tempo - 1.0) > 1e-6:
            pcm = time_stretch(pcm, rate, plan.tempo)
        pcm = apply_prosody(pcm, rate, plan.prosody)
        pcm = with_pause(pcm, rate, pause_after(segment.text) / (plan.engine_speed * plan.tempo))
        return resample(pcm, rate, plan.sample_rate)


def synthesize_to_bytes(engine: TtsEngine, plan: SpeechPlan, threads: int | None = None) -> bytes:
    """Whole response body in one go (tests, benchmarks, job runners)."""
    enc = plan.encoder()
    out = [enc.feed(render_segment(engine, plan, seg, threads)) for seg in plan.segments]
    out.append(enc.close())
    return b"".join(out)


def render_all(engine: TtsEngine, plan: SpeechPlan, threads: int | None = None) -> Pcm:
    parts = [render_segment(engine, plan, seg, threads) for seg in plan.segments]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

