"""Multi-site MR phantoms: real anatomy, MR signal equations and scanner effects.

Tissue fractions come from the MNI152 templates that ship with nilearn
(:mod:`.anatomy`), literature relaxation times (:mod:`.tissues`) turn them into
contrast through signal equations (:mod:`.sequences`), and each site adds its
own shading, blur, ringing, noise and scaling (:mod:`.scanner`, :mod:`.sites`).
:func:`.generate.generate_phantoms` writes the folder described in DESIGN.md.
"""
