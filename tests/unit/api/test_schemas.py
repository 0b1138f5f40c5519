from __future__ import annotations

import json

import pytest

from voxmesh.api.schemas import SpeechRequest, parse_body
from voxmesh.errors import InvalidRequest


def body(**fields: object) -> bytes:
    return json.dumps({"model": "tts-1", "input": "Hello.", **fields}).encode()


def test_openai_body_with_defaults() -> None:
    req = parse_body(body(voice="alloy"), SpeechRequest)
    assert req.response_format == "mp3" and req.speed == 1.0 and req.emotion == "neutral"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (body(input=""), "input"),
        (body(input="   "), "blank"),
        (body(speed=5), "speed"),
        (body(speed=0.1), "speed"),
        (body(response_format="ogg"), "response_format"),
        (body(sample_rate=8000), "sample_rate"),
        (body(emotion="furious"), "emotion"),
        (body(colour="red"), "unknown field 'colour'"),
        (json.dumps({"input": "hi"}).encode(), "missing field 'model'"),
        (body(input="x" * 20_001), "input"),
        (body(voice={}), "voice"),
        (body(voice={"a": -1}), "weights"),
    ],
)
def test_bad_input_says_what_to_fix(raw: bytes, needle: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_body(raw, SpeechRequest)
    assert needle in info.value.message
    assert info.value.status == 400
