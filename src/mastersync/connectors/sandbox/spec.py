"""Settings and registry entry of the sandbox consumer (light)."""

from __future__ import annotations

from typing import Literal

from mastersync.connectors.files.settings import DropFolderSettings
from mastersync.connectors.registry import ConnectorSettings, ConnectorSpec
from mastersync.connectors.sandbox.faults import Faults
from mastersync.ports.connector import Capability


class SandboxSettings(DropFolderSettings, ConnectorSettings):
    """type: sandbox: a simulated system (its drop folder feeds the hub, its database is
    what the hub delivers to)."""

    type: Literal["sandbox"]
    database: str | None = None  # default targets/<system>.db next to the landscape
    faults: Faults | None = None


SPEC = ConnectorSpec(
    name="sandbox",
    description="A simulated consumer system in a SQLite file, with configurable faults",
    capabilities=frozenset(
        {
            Capability.RECEIVE_PUSH,
            Capability.WRITE_UPSERT,
            Capability.WRITE_DEACTIVATE,
            Capability.READ_STATE,
        }
    ),
    settings=SandboxSettings,
    factory="mastersync.connectors.sandbox.target:from_settings",
)
