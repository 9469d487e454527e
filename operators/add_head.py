"""*Add Head*: the default CC0 head or the user's FLAME model (with its MediaPipe landmark embedding), rigged, at the
3D cursor. The FLAME model and embedding fields open with the preferences' *FLAME model* and *Landmark embedding*."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, FloatVectorProperty, StringProperty

N_SHAPE_SLIDERS = 10  # the first identity components: FLAME's strongest PCA directions


class LATTICETALK_OT_add_head(bpy.types.Operator):
    """Add a FLAME-schema head: mesh with expression shape keys and a root/neck/jaw/eye rig"""

    bl_idname = "lattice_talk.add_head"
    bl_label = "Add Head"
    bl_options = {"REGISTER", "UNDO"}

    source: EnumProperty(
        name="Head",
        items=(
            ("DEFAULT", "Default head", "LatticeTalk's CC0 head with the 52 ARKit-named face units"),
            ("FLAME", "FLAME file", "Your FLAME 2020/2023 model (.pkl or .npz)"),
        ),
        default="DEFAULT",
    )
    filepath: StringProperty(name="FLAME file", subtype="FILE_PATH", description="FLAME model when Head is 'FLAME file' "
                             "(default: Preferences › LatticeTalk › FLAME model)")
    embedding_path: StringProperty(
        name="Landmark embedding", subtype="FILE_PATH",
        description="FLAME's mediapipe_landmark_embedding.npz (default: Preferences › LatticeTalk › Landmark embedding, "
                    "else the file of that name beside the model); stored with the head, so the .blend keeps it",
    )
    filter_glob: StringProperty(default="*.pkl;*.npz", options={"HIDDEN"})
    betas: FloatVectorProperty(
        name="Shape", size=N_SHAPE_SLIDERS, default=(0.0,) * N_SHAPE_SLIDERS, soft_min=-3.0, soft_max=3.0,
        description="Identity shape: the head's first shape components (FLAME betas; MakeHuman head targets for the default head)",
    )

    def _fill_from_preferences(self, context) -> None:
        from ..preferences import get_settings

        settings = get_settings(context)
        self.filepath = self.filepath or settings.flame_path
        self.embedding_path = self.embedding_path or settings.flame_embedding_path

    def invoke(self, context, event):
        if self.source == "FLAME":  # the file browser opens on the preferences' model, with their embedding filled in
            self._fill_from_preferences(context)
            context.window_manager.fileselect_add(self)
            return {"RUNNING_MODAL"}
        return self.execute(context)

    def execute(self, context):
        from ..core.errors import LatticeTalkError
        from ..core.heads import DEFAULT_HEAD, create, require_landmarks
        from ..scene.head_builder import build_head

        if self.source == "FLAME":
            self._fill_from_preferences(context)
            if not self.filepath:
                self.report({"ERROR"}, "Choose a FLAME model file (generic_model.pkl or flame2023.pkl) first")
                return {"CANCELLED"}
        source = DEFAULT_HEAD if self.source == "DEFAULT" else bpy.path.abspath(self.filepath)
        embedding = bpy.path.abspath(self.embedding_path) if self.source == "FLAME" and self.embedding_path else None
        try:
            head = create(source, landmark_embedding=embedding)  # all checks happen here, before the scene is touched
        except LatticeTalkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        import numpy as np

        betas = np.zeros(head.n_shape, np.float32)
        count = min(N_SHAPE_SLIDERS, head.n_shape)
        betas[:count] = self.betas[:count]
        objects = build_head(head, betas=betas, collection=context.collection, source=str(source))
        rig = objects.armature or objects.mesh
        rig.location = context.scene.cursor.location
        for obj in context.view_layer.objects.selected:
            obj.select_set(False)
        rig.select_set(True)
        context.view_layer.objects.active = rig
        self.report({"INFO"}, f"Added {head.head_id}: {head.n_vertices} vertices, {head.n_expression} expressions")
        try:
            require_landmarks(head)
        except LatticeTalkError as exc:  # the head is usable by hand; takes will need the embedding
            self.report({"WARNING"}, f"Generate from Audio and Apply Clip will need the embedding: {exc}")
        return {"FINISHED"}
