"""The segment model shared by X12 and EDIFACT: segments of elements of components."""

from __future__ import annotations

from dataclasses import dataclass

# A native record: flat, string-valued, ready for the declarative mapping layer.
Record = dict[str, str]


@dataclass(frozen=True, slots=True)
class Element:
    """A data element: one or more repetitions, each a tuple of components."""

    repetitions: tuple[tuple[str, ...], ...]

    @property
    def value(self) -> str:
        """The first component of the first repetition (the whole value of a simple element)."""
        return self.repetitions[0][0]

    @property
    def components(self) -> tuple[str, ...]:
        """The components of the first repetition."""
        return self.repetitions[0]

    def component(self, index: int) -> str:
        """The 1-based component of the first repetition, or "" when absent."""
        comps = self.repetitions[0]
        return comps[index - 1] if 0 < index <= len(comps) else ""

    @property
    def is_empty(self) -> bool:
        """True when every component of every repetition is empty."""
        return all(not c for rep in self.repetitions for c in rep)


EMPTY = Element((("",),))


@dataclass(slots=True)
class Segment:
    """A segment with its tag, elements and where it sits in the input."""

    id: str
    elements: tuple[Element, ...]
    file_position: int  # ordinal of the segment in the whole input, 1-based
    offset: int  # character offset of the segment tag in the decoded input, 0-based
    position: int | None = None  # within its set/message (header = 1); None for envelopes

    def element(self, index: int) -> Element:
        """The 1-based element (index 1 is "SE01"), or an empty element when absent."""
        return self.elements[index - 1] if 0 < index <= len(self.elements) else EMPTY

    def get(self, index: int, component: int = 1) -> str:
        """The value at a 1-based element and component, or "" when absent."""
        return self.element(index).component(component)
