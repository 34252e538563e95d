"""digitalhuman: seeded NPC personas (face + matching voice) for games and VR, on a CPU, offline."""

__version__ = "0.7.4"

__all__ = ["__version__", "Persona", "PersonaError", "PersonaPipeline", "ModelNotAvailable"]


def __getattr__(name: str):
    # lazy: `import digitalhuman` (and the CLI's argument checks) must not pay for torch
    if name in ("Persona", "PersonaError"):
        from . import persona

        return getattr(persona, name)
    if name in ("PersonaPipeline", "ModelNotAvailable"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'digitalhuman' has no attribute {name!r}")
