"""The layout tables: one line per physical key (``KeyboardEvent.code``), levels
base / Shift / AltGr / Shift+AltGr; ``--`` = nothing, ``dead^`` = dead key. Format: :mod:`.table`.

Facts: each table is the part of the layout on which the Windows layout and the XKB symbols
file (``/usr/share/X11/xkb/symbols``) agree; characters only one of them has are left out so the
encoder never relies on them (see docs/layouts.md for the few places they disagree and what these
tables chose). ``tests/test_layouts.py`` checks every entry against libxkbcommon when it is
installed. The key right of the quote key on ISO boards is listed as ``Backslash``: Linux and
Windows treat HID usages 0x31 and 0x32 as the same key, and the encoder sends 0x31.
"""

# ruff: noqa: RUF001 - the acute accent U+00B4 in the tables is data, not a typo for a backquote

from __future__ import annotations

from typing import Final

# Letter rows shared by QWERTY layouts; layouts that move letters list them in full.
_QWERTY_LETTERS: Final = """
KeyQ          q     Q
KeyW          w     W
KeyE          e     E
KeyR          r     R
KeyT          t     T
KeyY          y     Y
KeyU          u     U
KeyI          i     I
KeyO          o     O
KeyP          p     P
KeyA          a     A
KeyS          s     S
KeyD          d     D
KeyF          f     F
KeyG          g     G
KeyH          h     H
KeyJ          j     J
KeyK          k     K
KeyL          l     L
KeyZ          z     Z
KeyX          x     X
KeyC          c     C
KeyV          v     V
KeyB          b     B
KeyN          n     N
KeyM          m     M
"""


def _with_letters(table: str, letters: str = _QWERTY_LETTERS) -> str:
    """Add the letter rows the table does not list itself (a listed key wins)."""
    listed = {line.split()[0] for line in table.splitlines() if line.split()}
    extra = [
        line for line in letters.splitlines() if line.split() and line.split()[0] not in listed
    ]
    return table + "\n".join(extra) + "\n"


US: Final = _with_letters(
    r"""
Backquote     `     ~
Digit1        1     !
Digit2        2     @
Digit3        3     #
Digit4        4     $
Digit5        5     %
Digit6        6     ^
Digit7        7     &
Digit8        8     *
Digit9        9     (
Digit0        0     )
Minus         -     _
Equal         =     +
BracketLeft   [     {
BracketRight  ]     }
Backslash     \     |
Semicolon     ;     :
Quote         '     "
Comma         ,     <
Period        .     >
Slash         /     ?
"""
)

GB: Final = _with_letters(
    r"""
Backquote     `     ¬
Digit1        1     !
Digit2        2     "
Digit3        3     £
Digit4        4     $     €
Digit5        5     %
Digit6        6     ^
Digit7        7     &
Digit8        8     *
Digit9        9     (
Digit0        0     )
Minus         -     _
Equal         =     +
BracketLeft   [     {
BracketRight  ]     }
Semicolon     ;     :
Quote         '     @
Backslash     #     ~
IntlBackslash \     |
Comma         ,     <
Period        .     >
Slash         /     ?
"""
)

DE: Final = _with_letters(
    r"""
Backquote     dead^ °
Digit1        1     !
Digit2        2     "     ²
Digit3        3     §     ³
Digit4        4     $
Digit5        5     %
Digit6        6     &
Digit7        7     /     {
Digit8        8     (     [
Digit9        9     )     ]
Digit0        0     =     }
Minus         ß     ?     \
Equal         dead´ dead`
KeyQ          q     Q     @
KeyE          e     E     €
KeyY          z     Z
BracketLeft   ü     Ü
BracketRight  +     *     ~
Semicolon     ö     Ö
Quote         ä     Ä
Backslash     #     '
IntlBackslash <     >     |
KeyZ          y     Y
KeyM          m     M     µ
Comma         ,     ;
Period        .     :
Slash         -     _
"""
)

FR: Final = r"""
Backquote     ²
Digit1        &     1
Digit2        é     2     ~
Digit3        "     3     #
Digit4        '     4     {
Digit5        (     5     [
Digit6        -     6     |
Digit7        è     7     `
Digit8        _     8     \
Digit9        ç     9     ^
Digit0        à     0     @
Minus         )     °     ]
Equal         =     +     }
KeyQ          a     A
KeyW          z     Z
KeyE          e     E     €
KeyR          r     R
KeyT          t     T
KeyY          y     Y
KeyU          u     U
KeyI          i     I
KeyO          o     O
KeyP          p     P
BracketLeft   dead^ dead¨
BracketRight  $     £     ¤
KeyA          q     Q
KeyS          s     S
KeyD          d     D
KeyF          f     F
KeyG          g     G
KeyH          h     H
KeyJ          j     J
KeyK          k     K
KeyL          l     L
Semicolon     m     M
Quote         ù     %
Backslash     *     µ
IntlBackslash <     >
KeyZ          w     W
KeyX          x     X
KeyC          c     C
KeyV          v     V
KeyB          b     B
KeyN          n     N
KeyM          ,     ?
Comma         ;     .
Period        :     /
Slash         !     §
"""

ES: Final = _with_letters(
    r"""
Backquote     º     ª     \
Digit1        1     !     |
Digit2        2     "     @
Digit3        3     ·     #
Digit4        4     $     ~
Digit5        5     %
Digit6        6     &     ¬
Digit7        7     /
Digit8        8     (
Digit9        9     )
Digit0        0     =
Minus         '     ?
Equal         ¡     ¿
KeyE          e     E     €
BracketLeft   dead` dead^ [
BracketRight  +     *     ]
Semicolon     ñ     Ñ
Quote         dead´ dead¨ {
Backslash     ç     Ç     }
IntlBackslash <     >
Comma         ,     ;
Period        .     :
Slash         -     _
"""
)

IT: Final = _with_letters(
    r"""
Backquote     \     |
Digit1        1     !
Digit2        2     "
Digit3        3     £
Digit4        4     $
Digit5        5     %
Digit6        6     &
Digit7        7     /
Digit8        8     (
Digit9        9     )
Digit0        0     =
Minus         '     ?     `
Equal         ì     ^     ~
KeyE          e     E     €
BracketLeft   è     é     [     {
BracketRight  +     *     ]     }
Semicolon     ò     ç     @
Quote         à     °     #
Backslash     ù     §
IntlBackslash <     >
Comma         ,     ;
Period        .     :
Slash         -     _
"""
)

CH_DE: Final = _with_letters(
    r"""
Backquote     §     °
Digit1        1     +
Digit2        2     "     @
Digit3        3     *     #
Digit4        4     ç
Digit5        5     %
Digit6        6     &     ¬
Digit7        7     /     |
Digit8        8     (     ¢
Digit9        9     )
Digit0        0     =
Minus         '     ?     dead´
Equal         dead^ dead` dead~
KeyE          e     E     €
KeyY          z     Z
BracketLeft   ü     è     [
BracketRight  dead¨ !     ]
Semicolon     ö     é
Quote         ä     à     {
Backslash     $     £     }
IntlBackslash <     >     \
KeyZ          y     Y
Comma         ,     ;
Period        .     :
Slash         -     _
"""
)

# Swedish and Finnish share the Windows layout; XKB's "fi" differs only on AltGr levels these
# tables do not use.
SE: Final = _with_letters(
    r"""
Backquote     §     ½
Digit1        1     !
Digit2        2     "     @
Digit3        3     #     £
Digit4        4     ¤     $
Digit5        5     %
Digit6        6     &
Digit7        7     /     {
Digit8        8     (     [
Digit9        9     )     ]
Digit0        0     =     }
Minus         +     ?     \
Equal         dead´ dead`
KeyE          e     E     €
BracketLeft   å     Å
BracketRight  dead¨ dead^ dead~
Semicolon     ö     Ö
Quote         ä     Ä
Backslash     '     *
IntlBackslash <     >     |
KeyM          m     M     µ
Comma         ,     ;
Period        .     :
Slash         -     _
"""
)

NO: Final = _with_letters(
    r"""
Backquote     |     §
Digit1        1     !
Digit2        2     "     @
Digit3        3     #     £
Digit4        4     ¤     $
Digit5        5     %
Digit6        6     &
Digit7        7     /     {
Digit8        8     (     [
Digit9        9     )     ]
Digit0        0     =     }
Minus         +     ?
Equal         \     dead` dead´
KeyE          e     E     €
BracketLeft   å     Å
BracketRight  dead¨ dead^ dead~
Semicolon     ø     Ø
Quote         æ     Æ
Backslash     '     *
IntlBackslash <     >
KeyM          m     M     µ
Comma         ,     ;
Period        .     :
Slash         -     _
"""
)

DK: Final = _with_letters(
    r"""
Backquote     ½     §
Digit1        1     !
Digit2        2     "     @
Digit3        3     #     £
Digit4        4     ¤     $
Digit5        5     %
Digit6        6     &
Digit7        7     /     {
Digit8        8     (     [
Digit9        9     )     ]
Digit0        0     =     }
Minus         +     ?
Equal         dead´ dead` |
KeyE          e     E     €
BracketLeft   å     Å
BracketRight  dead¨ dead^ dead~
Semicolon     æ     Æ
Quote         ø     Ø
Backslash     '     *
IntlBackslash <     >     \
KeyM          m     M     µ
Comma         ,     ;
Period        .     :
Slash         -     _
"""
)
