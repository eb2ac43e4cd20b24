"""The record of a diagnosis: which case of the methodology holds, why, and what to try next."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Diagnosis:
    verdict: str
    headline: str
    evidence: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "headline": self.headline,
            "evidence": self.evidence,
            "next_steps": self.next_steps,
        }
