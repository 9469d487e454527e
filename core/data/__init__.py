"""Training and evaluation data: synthetic speech with phoneme timing, articulatory targets, corpora."""
