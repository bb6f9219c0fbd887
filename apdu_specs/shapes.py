"""Command shapes the applet spec modules share, so that each declares only what is its own.

`tlv_read`: a case-2 command (ISO/IEC 7816-4 §5.1) that reads an applet's data
objects — P1-P2 fixed, no command data, Le required, the answer a BER-TLV list
of the objects a table names (GET DATA of one template, GET STATUS,
GET CERTIFICATES...).
"""

from __future__ import annotations

from apdu_specs.constructs import BerTlv, TagTable
from apdu_specs.framework.fields import Le
from apdu_specs.framework.patterns import sws
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import AppletContext, Vector

__all__ = ["tlv_read"]


def tlv_read(
    name: str,
    ins: int,
    clause: str,
    tags: TagTable,
    *,
    context: AppletContext,
    errors: str,
    vectors: tuple[Vector, ...],
    cla: int = 0x80,
    p1: int = 0x00,
    p2: int = 0x00,
    variant: str = "",
    summary: str = "",
    doc: str = "",
) -> CommandSpec:
    """A command that reads the data objects of `tags`, each at most once.

    Args:
        name: the command's name (and its summary, unless `summary` says otherwise).
        ins: its INS byte.
        clause: where it is defined.
        tags: the objects the answer may hold.
        context: the applet it belongs to.
        errors: the status words it may answer besides 9000, space-separated ("6985 6A86").
        vectors: its test vectors.
        cla: the class byte (80: proprietary, ISO/IEC 7816-4 §5.4.1).
        p1: P1.
        p2: P2.
        variant: which of several commands of that name.
        summary: the summary when it is not the name.
        doc: a note on when the card refuses it.
    """
    return CommandSpec(
        name,
        ins,
        clause,
        variant=variant,
        cla=cla,
        p1=p1,
        p2=p2,
        le=Le.REQUIRED,
        response=BerTlv(tags, max_items=len(tags)),
        sws=sws(errors),
        summary=summary or name,
        context=context,
        doc=doc,
        vectors=vectors,
    )
