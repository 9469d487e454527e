"""The speech pipeline: audio → features → decoder → default-head mouth motion + prosody → the target head.

Registered as the ``speech`` pipeline when its weights are installed. Long audio is decoded in overlapping
chunks (progress and cancel between chunks). On the default head the decoder's ARKit units and jaw are the
animation; on any other head the motion is carried over through the MediaPipe motion space by
``core.retarget``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..clip import AnimationClip
from ..errors import LatticeTalkError
from ..pipeline import WARNINGS_KEY, Cancelled, GenerateRequest, ProgressFn, StopFn

MODEL_DIR = Path(__file__).resolve().parents[2] / "vendor_models" / "speech"
CHUNK_SECONDS, CONTEXT_SECONDS = 20.0, 1.0


@dataclass
class Decoded:
    """What the model folder's networks make of a sound, one row per take frame."""

    units: np.ndarray  # (T, U) the decoder's, before its seal
    jaw: np.ndarray  # (T,) rad, before its seal
    closure: np.ndarray  # (T,) the decoder's p/b/m closure probability (its seal: model.apply_seal)
    bilabial: np.ndarray  # (T,) the p/b/m detector's probability (zeros without a detector)
    opening: np.ndarray | None  # (T,) the mouth-opening head's (None without one): the A/V offset's evidence


def weights_installed(model_dir: Path | None = None) -> bool:
    from .model import DECODER_FILE

    return ((model_dir or MODEL_DIR) / DECODER_FILE).is_file()


class SpeechPipeline:
    name = "speech"

    def __init__(self, model_dir: str | Path = MODEL_DIR, threads: int | None = None, device: str = "cpu"):
        self.model_dir = Path(model_dir)
        self.threads = threads
        self.device = device  # a torch device that core.device.torch_device chose: "cpu" or "cuda"
        self._model = None
        self._config: dict = {}
        self._features = None  # audio → decoder input (log-mel or an SSL encoder's states), set by prepare()
        self._detector = None  # the model folder's p/b/m detector (core.speech.bilabial.FolderDetector), when it has one
        self._opening = None  # its mouth-opening head (core.speech.opening.FolderOpeningHead), when it has one
        self._weights_sha256 = ""  # a take names the exact weights that made it

    def prepare(self) -> None:
        import os

        try:
            import torch
        except ImportError as exc:
            raise LatticeTalkError(
                "the speech model needs torch: in Blender use Preferences › Add-ons › LatticeTalk › Install "
                "Dependencies; elsewhere pip install -c constraints.txt -e '.[torch,speech]'") from exc

        from ..rerun import file_sha256
        from .bilabial import folder_detector
        from .features import StackedFeatures, decoder_features
        from .model import DECODER_FILE, load_decoder
        from .opening import folder_opening_head

        # A couple of threads keep Blender's UI responsive on small machines and are all this model needs.
        torch.set_num_threads(self.threads or max(1, min(4, (os.cpu_count() or 2) - 1)))
        if self._model is None:  # every part loaded before any is kept: a folder that fails fails on every call
            model, config = load_decoder(self.model_dir)
            features = decoder_features(config, self.model_dir, self.device)
            detector = folder_detector(self.model_dir, self.device,  # the phonetic encoder loaded once for all
                                       (features.encoder, features.phonetic) if isinstance(features, StackedFeatures) else None)
            opening = folder_opening_head(self.model_dir, self.device, detector)
            self._weights_sha256 = file_sha256(self.model_dir / DECODER_FILE)
            self._config, self._features, self._detector, self._opening = config, features, detector, opening
            self._model = model.to(self.device)

    def _decode(self, samples: np.ndarray, n_frames: int, fps: float, progress: ProgressFn,
                should_stop: StopFn) -> Decoded:
        """The decoder's units, jaw and closure, and the heads' p/b/m probability and mouth opening, chunk by chunk
        with CONTEXT_SECONDS of audio either side."""
        from .bilabial import detect
        from .log_mel import SAMPLE_RATE
        from .model import decode

        units = np.zeros((n_frames, len(self._config["unit_names"])), np.float32)
        jaw = np.zeros(n_frames, np.float32)
        closure = np.zeros(n_frames, np.float32)
        bilabial = np.zeros(n_frames, np.float32)
        opening = None if self._opening is None else np.zeros(n_frames, np.float32)
        starts = np.arange(0.0, n_frames / fps, CHUNK_SECONDS)
        for k, start in enumerate(starts):
            if should_stop():
                raise Cancelled()
            progress(f"speech {k + 1}/{len(starts)}", 0.1 + 0.8 * k / len(starts))
            lo, hi = max(0.0, start - CONTEXT_SECONDS), min(n_frames / fps, start + CHUNK_SECONDS + CONTEXT_SECONDS)
            segment = samples[int(lo * SAMPLE_RATE):int(hi * SAMPLE_RATE)]
            f_lo, f_hi = int(round(lo * fps)), int(round(hi * fps))
            states: dict[str, np.ndarray] = {}  # a phonetic encoder's states of this segment, computed once
            features = self._decoder_input(segment, states)
            u, j, c = decode(self._model, features, f_hi - f_lo)
            keep_lo, keep_hi = int(round(start * fps)), min(n_frames, int(round((start + CHUNK_SECONDS) * fps)))
            kept = slice(keep_lo - f_lo, keep_hi - f_lo)
            units[keep_lo:keep_hi], jaw[keep_lo:keep_hi], closure[keep_lo:keep_hi] = u[kept], j[kept], c[kept]
            if self._detector is not None:
                detector_input = features if self._detector.features is None else \
                    _phonetic_states(states, self._detector.encoder, self._detector.features, segment)
                bilabial[keep_lo:keep_hi] = detect(self._detector.detector, detector_input, f_hi - f_lo)[kept]
            if opening is not None:
                opening[keep_lo:keep_hi] = self._opening.opening(
                    _phonetic_states(states, self._opening.encoder, self._opening.features, segment), f_hi - f_lo)[kept]
        return Decoded(units, jaw, closure, bilabial, opening)

    def _decoder_input(self, segment: np.ndarray, states: dict[str, np.ndarray]) -> np.ndarray:
        """The decoder's features of ``segment``; the phonetic encoder's states among them go into ``states``."""
        from .features import StackedFeatures

        if isinstance(self._features, StackedFeatures):
            return self._features.stack(segment, _phonetic_states(states, self._features.encoder,
                                                                  self._features.phonetic, segment))
        return self._features(segment)

    def mouth_opening(self, audio_path: str | Path, fps: float) -> np.ndarray | None:
        """(T,) the mouth-opening head's opening for a sound file at ``fps`` (what a take's video offset is estimated
        from), or None where the model has no head."""
        from ..audio import load_audio

        self.prepare()
        if self._opening is None:
            return None
        audio = load_audio(audio_path)
        n_frames = max(1, int(round(audio.duration * fps)))
        return self._decode(audio.samples, n_frames, fps, lambda *a: None, lambda: False).opening

    def generate(self, request: GenerateRequest, progress: ProgressFn, should_stop: StopFn) -> AnimationClip:
        from ..audio import audio_warnings, load_audio
        from ..prosody import add_prosody, energy_pauses
        from ..mouth import mouth_unit_mask
        from .model import apply_seal, seal_window

        settings = request.settings
        progress("reading audio", 0.0)
        audio = load_audio(request.audio_path)
        video = None
        if request.video_path is not None:  # tracked first, so a bad video fails before the model runs
            from ..motion.face_models import video_face_model
            from ..motion.fusion import track_reference_video

            video, progress = track_reference_video(request.video_path, progress, should_stop,
                                                    video_face_model(request.video_model, self.device))
        fps = settings.fps
        n_frames = max(1, int(round(audio.duration * fps)))
        decoded = self._decode(audio.samples, n_frames, fps, progress, should_stop)
        units, jaw = decoded.units, decoded.jaw
        names = tuple(self._config["unit_names"])
        if self._opening is not None and self._opening.jaw_weight > 0.0:  # before any seal: a p/b/m still shuts
            from .opening import guide_jaw

            jaw = guide_jaw(units, jaw, names, decoded.opening, self._opening.jaw_weight)
        units, jaw = (a.astype(np.float32) for a in apply_seal(units, jaw, decoded.closure, names,
                                                              seal_window(self._config)))
        detected = None
        if self._detector is not None:
            from .bilabial import seal_detected_bilabials

            units, jaw, detected = seal_detected_bilabials(units, jaw, names, decoded.bilabial, fps,
                                                           self._detector.threshold, self._detector.jaw_gate)
        transcript_report = None
        if request.transcript:
            from .transcript import seal_transcript_bilabials

            progress("aligning the transcript", 0.9)
            units, jaw, transcript_report = seal_transcript_bilabials(units, jaw, names, audio, request.transcript, fps)
        elif settings.recognize_words:
            from .transcript import seal_recognized_bilabials

            progress("recognising the words", 0.9)
            units, jaw, transcript_report = seal_recognized_bilabials(units, jaw, names, audio, fps)
        mouth = mouth_unit_mask(names)
        units[:, mouth] = np.clip(units[:, mouth] * settings.intensity, 0.0, 1.0)
        jaw = jaw * settings.intensity
        placed = None
        if video is not None:  # where the video will have a say, so no audio-only blink falls inside its fades
            from ..motion.fusion import place_reference_video

            placed = place_reference_video(video, audio.samples, audio.sample_rate, units, names, jaw, fps,
                                           settings.video_offset, decoded.opening)
        # The audio's own digest joins the seed: two clips with one seed do not blink and nod on the same frames.
        rng = np.random.default_rng([settings.seed, int(audio.sha256[:16], 16)])
        pauses = energy_pauses(audio.samples, audio.sample_rate, fps, n_frames)
        head_rotation = add_prosody(units, names, audio.samples, audio.sample_rate, fps, rng, pauses,
                                    settings.head_motion, settings.blinks,
                                    blink_free=None if placed is None else placed.weight > 0.0)
        progress("head motion and take", 0.92)
        provenance = {"pipeline": self.name, "model": str(self.model_dir.name), "model_sha256": self._weights_sha256,
                      "device": self.device,
                      "features": self._config.get("features"), "audio_sha256": audio.sha256,
                      "settings": settings.as_dict()}
        if detected is not None:
            provenance["bilabial_detector"] = {"sha256": self._detector.sha256, "threshold": self._detector.threshold,
                                               "jaw_gate": self._detector.jaw_gate, "encoder": self._detector.encoder or None,
                                               "encoder_sha256": self._detector.encoder_sha256 or None, "sealed": detected}
        if self._opening is not None:
            provenance["mouth_opening_head"] = {"sha256": self._opening.sha256, "encoder": self._opening.encoder,
                                                "encoder_sha256": self._opening.encoder_sha256,
                                                "jaw_weight": self._opening.jaw_weight}
        if transcript_report is not None:
            provenance["transcript"] = transcript_report
        warnings = audio_warnings(audio)
        if warnings:
            provenance[WARNINGS_KEY] = warnings
        if placed is not None:  # upper face and head pose from the video, lips from the audio
            from ..motion.fusion import fuse_reference_video

            units, head_rotation, provenance["video"] = fuse_reference_video(placed, units, names, head_rotation, fps,
                                                                             settings)
        jaw_rotvec = np.zeros((n_frames, 3), np.float32)
        jaw_rotvec[:, 0] = jaw
        default_id = self._config.get("head_id", "lattice_talk:default_head")
        clip = AnimationClip(fps=fps, start_frame=settings.start_frame, head_id=default_id, expression=units,
                             expression_names=names, jaw=jaw_rotvec, global_rotation=head_rotation.astype(np.float32),
                             provenance=provenance)
        if request.head.head_id == default_id:
            return clip
        from ..head_convert import convert_clip
        from ..heads import create

        return convert_clip(clip, create("default"), request.head)  # through the MediaPipe motion space


def _phonetic_states(states: dict[str, np.ndarray], encoder: str, features, segment: np.ndarray) -> np.ndarray:
    """``encoder``'s states of ``segment`` from ``states``, computed by ``features`` and kept there the first time."""
    if encoder not in states:
        states[encoder] = features(segment)
    return states[encoder]
