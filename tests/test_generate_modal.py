"""The sidebar's asynchronous Generate from Audio, driven by hand.

The bpy wheel runs no window event loop, so ``bpy.ops`` with INVOKE_DEFAULT runs ``execute``. Here the operator's own
``invoke``, ``modal`` and ``_finish`` run on real Blender data with the real speech pipeline on its worker thread;
the test plays Blender's event loop, sending TIMER and ESC events to ``modal`` as Blender would. The one stand-in is
``modal_handler_add``, which accepts only an operator Blender itself created.
"""

from __future__ import annotations

import inspect
import time
from types import SimpleNamespace

import pytest

bpy = pytest.importorskip("bpy", reason="the operator runs in real Blender")
pytest.importorskip("soundfile")
pytest.importorskip("torch")

import bad_input_fixtures as make  # noqa: E402
from clip_fixtures import make_clip, scene_snapshot  # noqa: E402
from lattice_talk.operators.generate import LATTICETALK_OT_generate_from_audio as GenerateOperator  # noqa: E402
from pipeline_fixtures import ReplayPipeline  # noqa: E402
from real_media import TALKING_HEAD  # noqa: E402

pytestmark = pytest.mark.blender


class OperatorInstance:
    """An instance of the operator as Blender would make it: its properties and ``report``; its methods are added
    below from the operator class itself."""

    def __init__(self, audio_path: str = "", video_path: str = "", take_name: str = "Line"):
        self.audio_path, self.video_path, self.take_name = audio_path, video_path, take_name
        self.pipeline, self.start_frame = "", -1
        self.reports: list[tuple[str, str]] = []

    def report(self, kinds, message: str) -> None:
        self.reports += [(kind, message) for kind in kinds]


DrivenGenerate = type("DrivenGenerate", (OperatorInstance,),
                      {name: f for name, f in vars(GenerateOperator).items() if inspect.isfunction(f)})


class EventLoopContext:
    """``bpy.context`` where the window manager records modal handlers instead of handing them to a window loop."""

    def __init__(self):
        self.handlers = []
        real_wm = bpy.context.window_manager
        handlers = self.handlers

        class WindowManager:
            def __getattr__(self, name):
                return getattr(real_wm, name)

            def __setattr__(self, name, value):
                setattr(real_wm, name, value)

            def modal_handler_add(self, operator) -> bool:
                handlers.append(operator)
                return True

        self.window_manager = WindowManager()

    def __getattr__(self, name):
        return getattr(bpy.context, name)


TIMER, ESC = SimpleNamespace(type="TIMER"), SimpleNamespace(type="ESC")


def run_until(operator, context, stage_starts: str | None, timeout: float = 60.0):
    """Send TIMER events every 10 ms until the run's stage starts with ``stage_starts`` (then return None) or the
    operator ends (return its result)."""
    progress = bpy.context.window_manager.lattice_talk_progress
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = operator.modal(context, TIMER)
        if result != {"PASS_THROUGH"}:
            return result
        if stage_starts is not None and progress.stage.startswith(stage_starts):
            return None
        time.sleep(0.01)
    raise AssertionError(f"no end within {timeout} s; last stage {progress.stage!r}")


@pytest.fixture
def scene_with_a_head():
    import lattice_talk

    bpy.ops.wm.read_factory_settings(use_empty=True)
    lattice_talk.register()
    bpy.ops.lattice_talk.add_head(source="DEFAULT")
    yield
    lattice_talk.unregister()


def start(context, **props) -> DrivenGenerate:
    operator = DrivenGenerate(**props)
    assert operator.invoke(context, None) == {"RUNNING_MODAL"}, operator.reports
    assert context.handlers == [operator] and bpy.context.window_manager.lattice_talk_progress.running
    return operator


def cancel_at(stage: str, props: dict, by_button: bool) -> tuple[dict, DrivenGenerate]:
    """Start a run, cancel it (Esc, or the sidebar's Cancel button) once it reaches ``stage``, play the event loop
    to the end, and return the scene as it was before with the operator."""
    before = scene_snapshot(bpy)
    context = EventLoopContext()
    operator = start(context, **props)
    assert run_until(operator, context, stage) is None, f"the run ended before {stage!r}: {operator.reports}"
    if by_button:
        assert bpy.ops.lattice_talk.cancel_generation() == {"FINISHED"}
        assert run_until(operator, context, None) == {"CANCELLED"}
    else:
        assert operator.modal(context, ESC) == {"PASS_THROUGH"}
        assert run_until(operator, context, None) == {"CANCELLED"}
    return before, operator


def test_cancel_while_the_video_is_tracked_leaves_the_scene_identical(scene_with_a_head, tmp_path):
    audio = make.wav(tmp_path / "line.wav", make.speech_like(3.0))
    before, operator = cancel_at("video: tracking the face", {"audio_path": str(audio), "video_path": str(TALKING_HEAD)},
                                 by_button=False)
    assert scene_snapshot(bpy) == before
    assert ("INFO", "Generation cancelled; the scene is unchanged") in operator.reports
    assert not bpy.context.window_manager.lattice_talk_progress.running


def test_cancel_while_the_speech_model_runs_leaves_the_scene_identical(scene_with_a_head, tmp_path):
    audio = make.wav(tmp_path / "line.wav", make.speech_like(45.0))  # three chunks of the speech model
    before, operator = cancel_at("speech", {"audio_path": str(audio)}, by_button=True)
    assert scene_snapshot(bpy) == before
    assert ("INFO", "Generation cancelled; the scene is unchanged") in operator.reports


def test_a_cancel_after_the_last_stop_check_still_writes_nothing(scene_with_a_head, tmp_path):
    """A pipeline looks for a stop only between its steps: one asked during its last step is seen by no check, and
    the run ends with a result — which must be dropped all the same."""
    from lattice_talk.core import pipeline_registry as pipelines
    from lattice_talk.core.heads import create

    last_step = ReplayPipeline(make_clip(create("default")), steps=1, delay=0.5)  # one check, then half a second
    pipelines.register_pipeline("speech", lambda: last_step)
    try:
        before, operator = cancel_at("chunk 1/1", {"audio_path": str(make.wav(tmp_path / "line.wav"))}, by_button=False)
    finally:
        pipelines.unregister_pipeline("speech")
    assert scene_snapshot(bpy) == before
    assert ("INFO", "Generation cancelled; the scene is unchanged") in operator.reports


def test_a_finished_run_writes_its_take_in_one_step(scene_with_a_head, tmp_path):
    from lattice_talk.scene.head_builder import find_head
    from lattice_talk.scene.take_writer import list_takes

    context = EventLoopContext()
    operator = start(context, audio_path=str(make.wav(tmp_path / "line.wav")))
    assert run_until(operator, context, None) == {"FINISHED"}
    head = find_head(next(o for o in bpy.data.objects if o.type == "MESH"))
    assert list_takes(head) == ["Line"] and not bpy.context.window_manager.lattice_talk_progress.running


def test_a_second_generate_while_one_runs_is_refused(scene_with_a_head, tmp_path):
    audio = make.wav(tmp_path / "line.wav", make.speech_like(45.0))
    context = EventLoopContext()
    first = start(context, audio_path=str(audio))
    before = scene_snapshot(bpy)
    second = DrivenGenerate(audio_path=str(audio), take_name="Other")
    assert second.invoke(EventLoopContext(), None) == {"CANCELLED"}
    assert ("ERROR", "A generation is already running; cancel it or wait for it to finish") in second.reports
    with pytest.raises(RuntimeError, match="A generation is already running"):  # a script's call, while the sidebar's runs
        bpy.ops.lattice_talk.generate_from_audio(audio_path=str(audio), take_name="Script")
    assert scene_snapshot(bpy) == before
    assert first.modal(context, ESC) == {"PASS_THROUGH"} and run_until(first, context, None) == {"CANCELLED"}


def test_a_run_stopped_by_blender_releases_the_sidebar(scene_with_a_head, tmp_path):
    """Loading a file or closing Blender removes the modal handler and calls the operator's cancel(): the worker
    stops and the sidebar may start the next run."""
    context = EventLoopContext()
    operator = start(context, audio_path=str(make.wav(tmp_path / "line.wav", make.speech_like(45.0))))
    before = scene_snapshot(bpy)
    operator.cancel(context)
    assert operator._job.wait(30) is not None and operator._job.finished
    assert not bpy.context.window_manager.lattice_talk_progress.running
    assert scene_snapshot(bpy) == before
