from __future__ import annotations

from voxmesh.observability.metrics import Registry
from voxmesh.observability.relay import parse_families, relay


def _worker_text(model: str, in_flight: int, stage_s: float) -> str:
    reg = Registry()
    reg.histogram("voxmesh_worker_stage_seconds", "per stage", ("deployment", "stage")).labels(
        model, "g2p").observe(stage_s)
    plain = (f"# HELP voxmesh_worker_in_flight running\n# TYPE voxmesh_worker_in_flight gauge\n"
             f'voxmesh_worker_in_flight{{model="{model}"}} {in_flight}\n'
             "# TYPE voxmesh_worker_up gauge\nvoxmesh_worker_up 1\n")
    return plain + reg.render()


def test_relay_adds_labels_and_keeps_one_help_and_type_per_family() -> None:
    out = relay([
        ({"deployment": "tts-en", "replica": "tts-en-0"}, _worker_text("tts-en", 2, 0.01)),
        ({"deployment": "tts-en", "replica": "tts-en-1"}, _worker_text("tts-en", 5, 0.02)),
    ])
    lines = out.splitlines()
    assert lines.count("# TYPE voxmesh_worker_in_flight gauge") == 1
    assert lines.count("# TYPE voxmesh_worker_stage_seconds histogram") == 1
    assert 'voxmesh_worker_in_flight{deployment="tts-en",replica="tts-en-1",model="tts-en"} 5' in lines
    assert 'voxmesh_worker_up{deployment="tts-en",replica="tts-en-0"} 1' in lines
    # the worker's own deployment label is kept, not duplicated
    bucket = next(line for line in lines if line.startswith("voxmesh_worker_stage_seconds_count") and "tts-en-1" in line)
    assert bucket == 'voxmesh_worker_stage_seconds_count{replica="tts-en-1",deployment="tts-en",stage="g2p"} 1'
    # every sample of a family sits right after its TYPE line (what the text format requires)
    fams = parse_families(out)
    assert [f.name for f in fams] == ["voxmesh_worker_in_flight", "voxmesh_worker_up", "voxmesh_worker_stage_seconds"]
    assert len(fams[2].samples) == 2 * (len(fams[2].samples) // 2)


def test_relay_of_nothing_is_empty() -> None:
    assert relay([]) == ""
    assert relay([({"replica": "a"}, "")]) == ""


def test_label_values_are_escaped() -> None:
    out = relay([({"replica": 'we"ird'}, "x 1\n")])
    assert out == 'x{replica="we\\"ird"} 1\n'
