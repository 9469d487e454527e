"""*Generate from Audio*: speech (+ optional reference video) → a take on the selected head.

``invoke()`` (the sidebar button) runs the pipeline on a worker thread and stays modal: progress and ETA in
the sidebar, Esc or Cancel stops it, and the scene is untouched until the result is written inside
``modal()`` — one undo step. ``execute()`` (scripts, ``blender -b``) does the same work synchronously.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import bpy
from bpy.props import IntProperty, StringProperty

from .takes import NO_HEAD, report_take, resolve_head

POLL_SECONDS = 0.1
_running_jobs: "weakref.WeakSet" = weakref.WeakSet()  # so file load and add-on disable can stop them


def stop_running_jobs() -> None:
    """Cancel every running generation (their results are dropped: the scene they belong to is going away)."""
    for job in list(_running_jobs):
        job.cancel()


@bpy.app.handlers.persistent
def _on_load_pre(*_args) -> None:
    stop_running_jobs()


def build_request(context, audio_path: str, video_path: str):
    """Everything a pipeline needs, checked before any work starts (raises LatticeTalkError)."""
    from ..core.errors import LatticeTalkError
    from ..core.pipeline import GenerateRequest, GenerateSettings, check_request
    from ..preferences import get_settings
    from ..scene.character import check_take_target
    from ..scene.head_builder import scene_head
    from ..scene.take_writer import scene_fps

    objects = resolve_head(context)
    if objects is None:
        raise LatticeTalkError(NO_HEAD)
    check_take_target(objects)  # a character's map that does not fit fails here, before the model runs
    settings = context.scene.lattice_talk
    if not audio_path:
        raise LatticeTalkError("choose an audio file first")
    video_model = get_settings(context).video_model if video_path else None
    request = GenerateRequest(
        audio_path=Path(bpy.path.abspath(audio_path)),
        head=scene_head(objects),
        video_path=Path(bpy.path.abspath(video_path)) if video_path else None,
        video_model=Path(video_model) if video_model else None,
        settings=GenerateSettings(intensity=settings.intensity, head_motion=settings.head_motion, blinks=settings.blinks,
                                  fps=scene_fps(context.scene), start_frame=settings.start_frame, seed=settings.seed,
                                  recognize_words=settings.recognize_words,
                                  video_offset=None if settings.video_offset_auto or not video_path else settings.video_offset),
        transcript=settings.transcript.strip() or None,
    )
    check_request(request)
    return objects, request


def chosen_pipeline(context, name: str, report):
    """The named pipeline, or the speech model chosen in the preferences, on their torch threads and the compute
    device of the preferences (``report`` gets the notice when CUDA is chosen but unavailable)."""
    from ..core.device import torch_device
    from ..core.pipeline_registry import get_pipeline
    from ..preferences import get_settings

    settings = get_settings(context)
    device = torch_device(settings.compute_device, notice=lambda line: report({"WARNING"}, line))
    if name:  # a named pipeline: the speech-model preference is not its business
        return get_pipeline(name, threads=settings.resolved_torch_threads, device=device)
    return get_pipeline(speech_model=settings.speech_model, threads=settings.resolved_torch_threads, device=device)


def write_result(context, objects, clip, take_name: str, audio_path: Path, report) -> bool:
    """Write the take on the head or character; False (reported, nothing written) when a character's map is bad."""
    from ..core.errors import LatticeTalkError
    from ..core.pipeline import clip_warnings
    from ..scene.character import write_take_on_target

    settings = context.scene.lattice_talk
    tolerance = settings.key_tolerance if settings.reduce_keys else 0.0
    try:
        result = write_take_on_target(clip, objects, context.scene, take_name, start_frame=settings.start_frame,
                                      key_tolerance=tolerance, sound_path=audio_path)
    except LatticeTalkError as exc:
        report({"ERROR"}, str(exc))
        return False
    report_take(result, report)
    for warning in clip_warnings(clip, audio_path):
        report({"WARNING"}, warning)
    return True


def sync_progress(job, progress) -> None:
    """Copy a job's state into the window manager's progress properties (what the sidebar draws)."""
    stage, fraction, eta = job.progress()
    progress.stage, progress.fraction = stage, fraction
    progress.eta_seconds = -1.0 if eta is None else eta


class LATTICETALK_OT_generate_from_audio(bpy.types.Operator):
    """Generate a face animation take from speech on the selected head"""

    bl_idname = "lattice_talk.generate_from_audio"
    bl_label = "Generate from Audio"
    bl_options = {"REGISTER", "UNDO"}

    audio_path: StringProperty(name="Audio", subtype="FILE_PATH", description="Default: the sidebar's audio")
    video_path: StringProperty(name="Reference video", subtype="FILE_PATH", description="Default: the sidebar's video")
    take_name: StringProperty(name="Take", description="Default: the sidebar's take name")
    pipeline: StringProperty(name="Pipeline", description="Which installed pipeline to use (default: the speech model)")
    start_frame: IntProperty(name="Start frame", default=-1, description="-1: the sidebar's start frame")

    def _refused_while_running(self, context) -> bool:
        """One generation at a time: a second (sidebar or script) would write into the scene the first one is
        about to change."""
        if context.window_manager.lattice_talk_progress.running:
            self.report({"ERROR"}, "A generation is already running; cancel it or wait for it to finish")
            return True
        return False

    def _inputs(self, context) -> tuple[str, str, str]:
        settings = context.scene.lattice_talk
        if self.start_frame >= 0:
            settings.start_frame = self.start_frame
        return (self.audio_path or settings.audio_path, self.video_path or settings.video_path,
                self.take_name or settings.take_name or "Take")

    def execute(self, context):
        from ..core.errors import LatticeTalkError
        from ..core.jobs import run_sync

        if self._refused_while_running(context):
            return {"CANCELLED"}
        audio, video, take = self._inputs(context)
        try:
            objects, request = build_request(context, audio, video)
            clip = run_sync(chosen_pipeline(context, self.pipeline, self.report), request)
        except LatticeTalkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"} if write_result(context, objects, clip, take, request.audio_path, self.report) else {"CANCELLED"}

    def invoke(self, context, event):
        from ..core.errors import LatticeTalkError
        from ..core.jobs import GenerationJob

        if self._refused_while_running(context):
            return {"CANCELLED"}
        progress = context.window_manager.lattice_talk_progress
        audio, video, self._take = self._inputs(context)
        try:
            self._objects, request = build_request(context, audio, video)
            self._job = GenerationJob(chosen_pipeline(context, self.pipeline, self.report), request).start()
        except LatticeTalkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        _running_jobs.add(self._job)
        progress.running, progress.cancel_requested, progress.fraction, progress.stage = True, False, 0.0, "starting"
        self._timer = context.window_manager.event_timer_add(POLL_SECONDS, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        progress = context.window_manager.lattice_talk_progress
        if event.type == "ESC" or progress.cancel_requested:
            self._job.cancel()
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        sync_progress(self._job, progress)
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()
        if not self._job.finished:
            return {"PASS_THROUGH"}
        return self._finish(context)

    def cancel(self, context) -> None:
        """Blender removes the modal handler (a file is loaded, Blender quits): stop the worker, free the sidebar."""
        self._job.cancel()
        self._release(context)

    def _release(self, context) -> None:
        context.window_manager.event_timer_remove(self._timer)
        progress = context.window_manager.lattice_talk_progress
        progress.running, progress.cancel_requested = False, False
        _running_jobs.discard(self._job)

    def _finish(self, context):
        from ..core.jobs import JobState

        self._release(context)
        state = self._job.state
        if state is JobState.CANCELLED:
            self.report({"INFO"}, "Generation cancelled; the scene is unchanged")
            return {"CANCELLED"}
        if state is JobState.FAILED:
            self.report({"ERROR"}, self._job.error)
            return {"CANCELLED"}
        try:
            self._objects.mesh.name  # the head may have been deleted while the job ran
        except ReferenceError:
            self.report({"ERROR"}, "The head was deleted while generating; nothing was written")
            return {"CANCELLED"}
        written = write_result(context, self._objects, self._job.result, self._take, self._job.request.audio_path, self.report)
        return {"FINISHED"} if written else {"CANCELLED"}


class LATTICETALK_OT_cancel_generation(bpy.types.Operator):
    """Stop the running generation; the scene stays as it was"""

    bl_idname = "lattice_talk.cancel_generation"
    bl_label = "Cancel"

    def execute(self, context):
        context.window_manager.lattice_talk_progress.cancel_requested = True
        return {"FINISHED"}


def register_handlers() -> None:
    if _on_load_pre not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(_on_load_pre)


def unregister_handlers() -> None:
    stop_running_jobs()
    if _on_load_pre in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_on_load_pre)
