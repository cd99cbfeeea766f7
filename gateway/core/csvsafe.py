"""Spreadsheet-safe CSV cells.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a
formula by Excel, LibreOffice and Google Sheets. Text that came from a client (a model name, a
key name) must never run as one in a staff member's spreadsheet, so such cells get a leading
apostrophe, which every spreadsheet shows as plain text (OWASP's CSV injection advice).
"""

from __future__ import annotations

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: object) -> object:
    """Return ``value`` unchanged unless it is a string a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
