"""medlib: reinforcement learning for medical image grounding.

Implements MedGround-R1 (Xu et al., MICCAI 2025), MedReasoner (Yan et al., 2025) and
MedVol-R1 (Wang et al., 2026) in one package. See the README for the module map.
"""

__version__ = "0.1.0"
