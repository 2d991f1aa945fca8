"""Synthetic X12 fixtures: an ISA of the right width for any delimiters, and whole interchanges."""

from __future__ import annotations


def isa(
    *,
    element: str = "*",
    component: str = ":",
    repetition: str = "U",
    terminator: str = "~",
    version: str = "00401",
    control: str = "000000001",
    sender: str = "SENDER",
    receiver: str = "RECEIVER",
    usage: str = "P",
) -> str:
    """A 106-character ISA segment (terminator included)."""
    fields = [
        "00",
        " " * 10,
        "00",
        " " * 10,
        "ZZ",
        sender.ljust(15),
        "ZZ",
        receiver.ljust(15),
        "240501",
        "1200",
        repetition,
        version,
        control,
        "0",
        usage,
        component,
    ]
    segment = element.join(["ISA", *fields]) + terminator
    assert len(segment) == 106
    return segment


def interchange(
    body: list[str],
    *,
    element: str = "*",
    component: str = ":",
    repetition: str = "U",
    terminator: str = "~",
    version: str = "00401",
    control: str = "000000001",
    suffix: str = "\n",
) -> str:
    """An ISA followed by `body` segments written with `*` and re-delimited as asked."""
    out = [
        isa(
            element=element,
            component=component,
            repetition=repetition,
            terminator=terminator,
            version=version,
            control=control,
        )
        + suffix
    ]
    for seg in body:
        out.append(seg.replace("*", element).replace(":", component) + terminator + suffix)
    return "".join(out)


CATALOG_SET = [
    "ST*832*0001",
    "BCT*PC*CAT-7*2***",
    "CUR*SE*USD",
    "DTM*007*20240501",
    "N1*MF*ACME TOOLS*92*MF01",
    "LIN*1*UP*012345678905*VN*W-100*BP*B-9",
    "PID*F****WIDGET, BLUE",
    "PID*F*TRN***WIDGETPRO",
    "PO4*12*1*EA*CTN*G*4.5*LB***10*8*6*IN*3",
    "MEA*PD*WT*0.4*LB",
    "CTP**CAT*12.50*1*EA",
    "DTM*007*20240601",
    "CTP**RES*19.99*1*EA",
    "LIN*2*EN*4006381333931*VN*P-200",
    "PID*F****PEN",
    "CTP**CAT*1.25*10*EA",
    "CTT*2",
    "SE*18*0001",
]
