"""Checking the audit log: the hash chain holds, and no golden version went unaudited."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mastersync.domain.governance.audit import GENESIS, AuditEntry, ChainBreak, verify_chain
from mastersync.ports.governance import Governance


@dataclass
class AuditReport:
    """What verification found."""

    entries: int = 0
    head: str = GENESIS
    breaks: list[ChainBreak] = field(default_factory=list)
    # (master id, version) of changes with no audit entry (deleted entries at the tail).
    unaudited: list[tuple[str, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the log is intact."""
        return not self.breaks and not self.unaudited


def verify(governance: Governance) -> AuditReport:
    """Walk the whole chain, then look for golden versions the log lacks."""
    report = AuditReport()

    def counted() -> Iterator[AuditEntry]:
        for entry in governance.audit_all():
            report.entries += 1
            report.head = entry.hash
            yield entry

    report.breaks = verify_chain(counted())
    report.unaudited = governance.unaudited()
    return report
