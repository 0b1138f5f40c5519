"""The gateway's side of admission: request costs, the 429/413 answers, metering after."""

from __future__ import annotations

import json

from voxmesh.settings import LimitsSettings
from voxmesh.tenancy import build_admission
from voxmesh.tenancy.gate import admit_request, meter_answer, rate_headers, refusal_parts, request_cost


def test_request_cost_per_route_and_body() -> None:
    speech = json.dumps({"model": "m", "input": "Hello there."}).encode()
    assert request_cost("POST", "/v1/audio/speech", speech, "application/json") == 12
    assert request_cost("POST", "/translate", json.dumps({"q": ["ab", "cde"], "target": "de"}).encode(),
                        "application/json; charset=utf-8") == 5  # fmt: skip
    assert request_cost("POST", "/translate", b"q=hello&target=de&api_key=k", "application/x-www-form-urlencoded") == 5
    assert request_cost("POST", "/v1/translations", b'{"input": "abc", "target": "de"}', "application/json") == 3
    chat = {"model": "m", "messages": [{"role": "user", "content": "four"}, {"role": "system", "content": [1]}]}
    assert request_cost("POST", "/v1/chat/completions", json.dumps(chat).encode(), "application/json") == 4
    assert request_cost("POST", "/v1/jobs", b'{"text": "123456", "voice": "v", "model": "m"}', "application/json") == 6
    assert request_cost("GET", "/v1/models", b"", "") == 0
    assert request_cost("POST", "/v1/audio/speech", b"{not json", "application/json") == 0
    assert request_cost("POST", "/v1/audio/speech", b"[1]", "application/json") == 0


async def test_refusal_answer_carries_retry_after_and_ratelimit_headers() -> None:
    adm = build_admission(LimitsSettings(requests_per_minute=60, burst_s=1))
    body = b'{"model": "m", "input": "hi"}'
    first = await admit_request(adm, "t", "POST", "/v1/audio/speech", body, "application/json")
    assert first.allowed and (b"x-ratelimit-remaining-requests", b"0") in rate_headers(first)
    refused = await admit_request(adm, "t", "POST", "/v1/audio/speech", body, "application/json")
    status, headers, payload = refusal_parts(refused)
    names = {k.decode(): v.decode() for k, v in headers}
    assert status == 429 and names["Retry-After"] == "1" and names["x-ratelimit-limit-requests"] == "60"
    assert json.loads(payload)["error"]["type"] == "rate_limit_error"


async def test_job_over_its_size_is_413() -> None:
    adm = build_admission(LimitsSettings(max_job_chars=3))
    d = await admit_request(adm, "t", "POST", "/v1/jobs", b'{"text": "abcd"}', "application/json")
    status, _, payload = refusal_parts(d)
    assert status == 413 and "limit is 3 per job" in json.loads(payload)["error"]["message"]


async def test_meter_answer_records_usage_and_charges_audio() -> None:
    adm = build_admission(LimitsSettings(audio_seconds_per_month=10))
    await meter_answer(adm, "t", "POST", "/v1/audio/speech", 12, 200, {"X-Audio-Seconds": "11.0"}, 100, "mp3")
    await meter_answer(adm, "t", "POST", "/translate", 7, 200, {}, 10)
    await meter_answer(adm, "t", "POST", "/v1/jobs", 30, 201, {}, 10)
    await meter_answer(adm, "t", "POST", "/v1/audio/speech", 99, 500, {}, 0)  # failures cost nothing
    row = (await adm.meter.store.get("t"))["t"]
    assert (row["chars_synthesized"], row["audio_seconds"], row["chars_translated"], row["jobs"]) == (42, 11, 7, 1)
    d = await admit_request(adm, "t", "POST", "/v1/audio/speech", b'{"input": "x"}', "application/json")
    assert not d.allowed and d.binding is not None and d.binding.name == "audio_seconds"  # 11 s of 10: in debt
