"""EDI layer: X12 and EDIFACT readers, record extraction, acknowledgements and writers.

Readers take text (or bytes) and never raise on bad input: problems become `EdiError`s on
the interchange, group, set or message they concern, and a bad set or message is rejected
without losing the good ones. See docs/edi.md for the record shapes.
"""

from mastersync.connectors.edi.edifact.contrl import build_contrl
from mastersync.connectors.edi.edifact.envelope import EdifactEnvelope
from mastersync.connectors.edi.edifact.model import (
    EdifactDelimiters,
    EdifactDocument,
    EdifactGroup,
    EdifactInterchange,
    Message,
)
from mastersync.connectors.edi.edifact.reader import parse_edifact, parse_edifact_bytes
from mastersync.connectors.edi.edifact.writer import write_invrpt, write_pricat
from mastersync.connectors.edi.errors import EdiError, EdiWriteError, Rule, Severity
from mastersync.connectors.edi.model import Element, Record, Segment
from mastersync.connectors.edi.text import decode_edi_bytes
from mastersync.connectors.edi.x12.ack import build_997
from mastersync.connectors.edi.x12.envelope import X12Envelope
from mastersync.connectors.edi.x12.model import (
    FunctionalGroup,
    Interchange,
    TransactionSet,
    X12Delimiters,
    X12Document,
)
from mastersync.connectors.edi.x12.reader import parse_x12, parse_x12_bytes
from mastersync.connectors.edi.x12.writer import write_832, write_846

__all__ = [
    "EdiError",
    "EdiWriteError",
    "EdifactDelimiters",
    "EdifactDocument",
    "EdifactEnvelope",
    "EdifactGroup",
    "EdifactInterchange",
    "Element",
    "FunctionalGroup",
    "Interchange",
    "Message",
    "Record",
    "Rule",
    "Segment",
    "Severity",
    "TransactionSet",
    "X12Delimiters",
    "X12Document",
    "X12Envelope",
    "build_997",
    "build_contrl",
    "decode_edi_bytes",
    "parse_edifact",
    "parse_edifact_bytes",
    "parse_x12",
    "parse_x12_bytes",
    "write_832",
    "write_846",
    "write_invrpt",
    "write_pricat",
]
