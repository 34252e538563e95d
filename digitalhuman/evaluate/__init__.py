"""Quality checks of the models by outside judges (an optional extra: ``scripts/install-judges.sh``).

``digitalhuman evaluate faces|voices|fusion`` runs ``faces.main``, ``voices.main`` or ``fusion.main``:

- ``faces``: generated faces vs held-out real faces (``face_judges``: detectors, identity, age/gender);
- ``voices``: persona voices on held-out lines (``voice_judges``, ``voice_metrics``: WER, DNSMOS,
  speaker similarity, gender);
- ``fusion``: whether a persona's face and voice agree, and the ways in (from a face, from a voice),
  families, blends and ageing (``fusion_figures``, ``fusion_tasks``, ``fusion_sections``);
- ``constraints``: what fixing one trait (``--age``, ``--gender``) keeps of the seed's person.

Nothing here is imported by the pipeline; importing this package loads no judge.
"""

__all__ = ["faces", "voices", "fusion", "constraints"]
