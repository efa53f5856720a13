from protocols.nameability.describe import Describe
from protocols.nameability.verify import Verify

__all__ = ["Describe", "Verify"]
