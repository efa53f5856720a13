from protocols.two_afc.protocol import TwoAFC

__all__ = ["TwoAFC"]
