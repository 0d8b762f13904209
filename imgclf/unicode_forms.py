"""Names written in two Unicode forms: macOS writes a name decomposed (NFD: 'e' and a
combining accent), most other systems composed (NFC: 'é'). The two print alike but are
different strings, so a folder, an id or a label from a Mac may not match one typed elsewhere."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from imgclf.wording import counted


def normal_form(name: str) -> str:
    """NFC or NFD; a name can be neither (U+212B, the Angstrom sign, which NFC makes U+00C5)."""
    forms = (form for form in ("NFC", "NFD") if unicodedata.is_normalized(form, name))
    return next(forms, "neither NFC nor NFD")


def written_otherwise(
    missing: list[str], present: Iterable[str], noun: str, here: str, there: str
) -> str:
    """A note on those of the names `missing` (`noun`s, from `here`) that are in `present`
    (from `there`) but for their Unicode form; empty when there are none."""
    present_by_nfc = {unicodedata.normalize("NFC", name): name for name in present}
    alike = [
        (name, present_by_nfc[composed])
        for name in dict.fromkeys(missing)
        if (composed := unicodedata.normalize("NFC", name)) in present_by_nfc
    ]
    if not alike:
        return ""
    name, other = alike[0]
    are = "is" if len(alike) == 1 else "are"
    return (
        f"; {counted(len(alike), noun)} {are} in {there} but for the Unicode form, which prints "
        f"alike (e.g. {name!r}: {normal_form(name)} in {here}, {normal_form(other)} in {there}): "
        "write both in one form, e.g. NFC (`convmv -f utf8 -t utf8 --nfc -r --notest FOLDER` "
        "renames files)"
    )
