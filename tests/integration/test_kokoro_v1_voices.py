"""The 54 Kokoro v1.0 voices on the real model: Mandarin through misaki's zh G2P with the zf_/zm_
voices (goal: Whisper-base CER <= 10 %), English with the a*/b* voices (WER <= 10 %), and the
five-voice fallback when the pack is absent. Skipped when `make setup` has not fetched the pack."""

from __future__ import annotations

from pathlib import Path

import jiwer
import pytest
from tests.integration.asr import Transcriber
from tests.integration.test_intelligibility import _norm_en, _norm_zh, _report, _sentences, _transcripts

from voxmesh.engines.base import VoiceMix
from voxmesh.engines.kokoro import KokoroEngine
from voxmesh.engines.kokoro_voices import default_pack_path, load_pack

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not default_pack_path().is_file(), reason="54-voice pack absent: run `make setup`"),
]


@pytest.fixture(scope="module")
def asr() -> Transcriber:
    return Transcriber(threads=2)


def test_engine_serves_54_voices_and_says_so(kokoro: KokoroEngine) -> None:
    ids = [v.id for v in kokoro.voices()]
    assert len(ids) == 54 and ids[0] == "af_alloy" and "zf_xiaobei" in ids
    assert kokoro.info_notes()["voice_pack"]["voices"] == 54
    assert kokoro.default_voice("zh") == "zf_xiaobei" and kokoro.default_voice("en") == "af_heart"
    pack = load_pack(default_pack_path())
    assert pack is not None
    assert (kokoro.style_table(VoiceMix.single("af_heart"))
            == pack["af_heart"]).all()


def test_without_the_pack_five_voices_remain(tmp_path: Path) -> None:
    engine = KokoroEngine(voices_path=tmp_path / "absent.npz")
    engine.load(1)
    assert [v.id for v in engine.voices()][:1] == ["jf_alpha"] and len(engine.voices()) == 5
    assert "absent" in engine.info_notes()["voice_pack"]["status"]
    assert engine.default_voice("en") == "jf_alpha"


@pytest.mark.parametrize("voice", ["zf_xiaobei", "zm_yunxi"])
def test_mandarin_cer_zh_voices(voice: str, kokoro: KokoroEngine, asr: Transcriber) -> None:
    sentences = _sentences("zh_sentences.txt")[:10]
    hyps = _transcripts(kokoro, asr, sentences, "zh", voice, prompt="以下是普通话的句子。")
    refs = [_norm_zh(s) for s in sentences]
    norm_hyps = [_norm_zh(h) for h in hyps]
    cer = jiwer.cer(refs, norm_hyps)
    per = [jiwer.cer(r, h) for r, h in zip(refs, norm_hyps, strict=True)]
    print(f"\nkokoro/{voice} Mandarin CER {cer:.3f} over {len(refs)} sentences")
    assert cer <= 0.10, f"CER {cer:.3f}; worst:\n{_report(refs, norm_hyps, per)}"


@pytest.mark.parametrize("voice", ["af_heart", "bm_fable"])
def test_english_wer_en_voices(voice: str, kokoro: KokoroEngine, asr: Transcriber) -> None:
    sentences = _sentences("en_sentences.txt")[:20]
    hyps = _transcripts(kokoro, asr, sentences, "en", voice)
    refs = [_norm_en(s) for s in sentences]
    norm_hyps = [_norm_en(h) for h in hyps]
    wer = jiwer.wer(refs, norm_hyps)
    per = [jiwer.wer(r, h) for r, h in zip(refs, norm_hyps, strict=True)]
    print(f"\nkokoro/{voice} English WER {wer:.3f} over {len(refs)} sentences")
    assert wer <= 0.10, f"WER {wer:.3f}; worst:\n{_report(refs, norm_hyps, per)}"
