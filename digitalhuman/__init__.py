"""digitalhuman: seeded NPC personas (face + matching voice) for games and VR, on a CPU, offline."""

__version__ = "0.1.0"

from .persona import Persona, PersonaError  # noqa: E402
from .pipeline import ModelNotAvailable, PersonaPipeline  # noqa: E402

__all__ = ["__version__", "Persona", "PersonaError", "PersonaPipeline", "ModelNotAvailable"]
