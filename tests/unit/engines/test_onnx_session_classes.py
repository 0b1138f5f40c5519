"""Middle thread classes of :class:`SessionPair` on a tiny real ONNX model (no voice model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx package builds the tiny test model")
from onnx import TensorProto, helper  # noqa: E402

from voxmesh.engines.onnx_sessions import SessionPair, middle_classes  # noqa: E402


def _model(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _threads(session: object) -> int:
    return int(session.get_session_options().intra_op_num_threads)  # type: ignore[attr-defined]


def test_middle_classes() -> None:
    assert middle_classes(1) == () and middle_classes(2) == ()
    assert middle_classes(8) == (2, 4) and middle_classes(16) == (2, 4, 8) and middle_classes(6) == (2, 4)


def test_two_threads_keep_two_sessions(tmp_path: Path) -> None:
    pair = SessionPair.load(_model(tmp_path / "m.onnx"), 2)
    assert pair.wait_narrow(30)
    assert [_threads(pair.pick(k)) for k in (None, 1, 2)] == [2, 1, 2]
    assert pair.classes == (1, 2)


def test_eight_threads_get_a_session_per_class(tmp_path: Path) -> None:
    feed = {"x": np.eye(4, dtype=np.float32)}
    pair = SessionPair.load(_model(tmp_path / "m.onnx"), 8, warm_feed=lambda: feed)
    assert pair.wait_narrow(30)
    for _ in range(300):  # the middle ones follow the narrow one in the same thread
        if pair.classes == (1, 2, 4, 8):
            break
        import time

        time.sleep(0.05)
    assert pair.classes == (1, 2, 4, 8)
    assert [_threads(pair.pick(k)) for k in (1, 2, 3, 4, 7, 8, None)] == [1, 2, 2, 4, 4, 8, 8]
    out = pair.run(pair.pick(4), feed)
    assert np.allclose(out[0], np.eye(4))


def test_before_the_middle_sessions_a_grant_never_gets_more_threads(tmp_path: Path) -> None:
    from voxmesh.engines import onnx_sessions

    pair = onnx_sessions.SessionPair(onnx_sessions.make_session(_model(tmp_path / "m.onnx"), 8), 8)
    assert _threads(pair.pick(4)) == 8  # nothing smaller yet: the wide one, as before the narrow one
    pair._narrow = onnx_sessions.make_session(tmp_path / "m.onnx", 1)
    assert _threads(pair.pick(4)) == 1  # the narrow one fits, the wide one would oversubscribe
