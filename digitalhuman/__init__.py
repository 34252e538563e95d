"""digitalhuman: seeded NPC personas (face + matching voice) for games and VR, on a CPU, offline."""

__version__ = "0.1.0"

__all__ = ["__version__"]
