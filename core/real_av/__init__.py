"""Real talking faces as the measure and the training signal: the held-out manifest, the real lips tracked
from video, scoring a speech model against them, and training shards made from real recordings."""
