"""Settings and registry entry of the EDI connector (light: imports no reader or writer)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mastersync.connectors.registry import ConnectorSettings, ConnectorSpec
from mastersync.ports.connector import Capability

RecordType = Literal["item", "price", "inventory"]
Message = Literal["832", "846", "PRICAT", "INVRPT"]


class PartnerIds(BaseModel):
    """Who we are and who the partner is, in the envelopes we write."""

    model_config = ConfigDict(extra="forbid")
    # X12 ISA06/ISA08 (at most 15 characters), EDIFACT UNB S002/S003 (at most 35).
    sender_id: str = Field(min_length=1, max_length=35)
    receiver_id: str = Field(min_length=1, max_length=35)
    sender_qualifier: str = "ZZ"
    receiver_qualifier: str = "ZZ"
    # P production, T test (X12 ISA15; EDIFACT UNB test indicator 1 when T).
    usage: Literal["P", "T"] = "P"


class EdiExport(PartnerIds):
    """Files written for a subscription: one interchange per delivery round."""

    folder: str
    message: Message
    # X12: refuse data holding a delimiter, or replace it by a space; EDIFACT escapes.
    on_invalid: Literal["refuse", "replace"] = "refuse"

    @field_validator("sender_id", "receiver_id")
    @classmethod
    def _fits_x12(cls, value: str) -> str:
        return value.strip()


class EdiSettings(ConnectorSettings):
    """type: edi."""

    type: Literal["edi"] = "edi"
    # Drop folder: X12 and EDIFACT files arrive here (the standard is detected per file).
    folder: str | None = None
    files: str = "*"
    settle: float = Field(default=2.0, ge=0)
    # Which record streams to ingest, each into the domain of the same name (each needs an
    # inbound mapping); streams not listed are read, acknowledged and left aside.
    domains: list[RecordType] = Field(min_length=1)
    # Where 997 / CONTRL acknowledgements are written (default: FOLDER/acks); none: not sent.
    acks: str | None = None
    acknowledge: bool = True
    # subscription name (under the system's outbound) -> export
    exports: dict[str, EdiExport] = Field(default_factory=dict)


SPEC = ConnectorSpec(
    name="edi",
    description="EDI X12 (832, 846, 888) and EDIFACT (PRICAT, INVRPT) files in, with 997 and "
    "CONTRL acknowledgements; 832, 846, PRICAT and INVRPT out",
    capabilities=frozenset({Capability.RECEIVE_PUSH, Capability.WRITE_UPSERT}),
    settings=EdiSettings,
    factory="mastersync.connectors.edi.connector:EdiConnector",
    writes="exports",
)
