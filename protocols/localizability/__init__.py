from protocols.localizability.protocol import Localizability

__all__ = ["Localizability"]
