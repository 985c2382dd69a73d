"""Errors and warnings in command-line terms.

The library speaks Python (``call it with num_inference_steps=20``, ``pass base_model=``); a CLI
user has flags. :func:`cli_message` rewrites a message for the command that was run: each
``keyword=value`` a message asks the user to *pass* (after "call it with", "pass", "use", ...)
becomes that command's flag (``--steps 20``, ``--base-model``) when it has one, or ``--arg
keyword=value`` for a pipeline call argument of ``generate`` ("call it with ..."). A schedule that is not found names
the flag it came from (``--schedule`` / ``--default``). Everything else is left as it is.

:class:`WarningPrinter` formats a Python warning as one ``warning: ...`` line, without the source
line Python would print under it.
"""

from __future__ import annotations

import argparse
import re

from ..errors import ScheduleNotFoundError, escape_control

#: Python keyword -> ``dest`` of the flag that sets it, where the two differ
KEYWORD_DESTS = {
    "num_inference_steps": ("steps", "num_inference_steps"),
    "base_model": ("base_model",),
    "base_revision": ("base_revision",),
    "torch_dtype": ("dtype",),
}
#: commands whose ``--arg KEY=VALUE`` passes pipeline call arguments
CALL_ARG_COMMANDS = {"generate"}

_KW = r"[a-z][a-z0-9_]*"
_VALUE = r"[^\s,;)]*"
#: "call it with a=1, b=2 and c=3", "pass a=", "or use a=1": the phrases asking for keywords
_REQUEST = re.compile(
    rf"\b(?P<verb>call (?:it|the pipeline) with|pass(?:ing)?|use|set)\s+"
    rf"(?P<items>{_KW}={_VALUE}(?:(?:,\s*|\s+(?:and|or)\s+){_KW}={_VALUE})*)"
)
_ITEM = re.compile(rf"(?P<kw>{_KW})=(?P<value>{_VALUE})")
#: bare keywords a message asks for, and the keywords they stand for
_PHRASES = (("pass height and width", ("height", "width")),)
_PYTHON_LITERALS = {"True": "true", "False": "false", "None": "null"}
_VERBS = {"call it with": "run it with", "call the pipeline with": "run it with"}


def flag_for(parser: argparse.ArgumentParser | None, keyword: str) -> str | None:
    """The long option of ``parser`` setting Python keyword ``keyword`` (``num_inference_steps`` -> ``--steps``)."""
    if parser is None:
        return None
    dests = KEYWORD_DESTS.get(keyword, (keyword,))
    for dest in dests:
        for action in parser._actions:
            if action.dest == dest and action.option_strings and action.help is not argparse.SUPPRESS:
                longs = [o for o in action.option_strings if o.startswith("--")]
                return (longs or action.option_strings)[0]
    return None


def cli_message(message: str, *, command: str | None = None, parser: argparse.ArgumentParser | None = None,
                args: argparse.Namespace | None = None, error: BaseException | None = None) -> str:
    """``message`` in the terms of ``command`` (its sub-parser ``parser``, parsed ``args``)."""
    if parser is None:
        return message

    def item(m: re.Match, call: bool) -> str:
        kw, value = m.group("kw"), m.group("value")
        flag = flag_for(parser, kw)
        if flag is not None:
            takes_value = next((a.nargs != 0 for a in parser._actions if flag in a.option_strings), True)
            return f"{flag} {value}" if value and takes_value else flag
        if call and command in CALL_ARG_COMMANDS and value:  # a pipeline call argument: --arg KEY=JSON
            return f"--arg {kw}={_PYTHON_LITERALS.get(value, value)}"
        return m.group(0)

    def request(m: re.Match) -> str:
        call = m.group("verb").startswith("call")
        items = _ITEM.sub(lambda i: item(i, call), m.group("items"))
        if items == m.group("items"):
            return m.group(0)
        return f"{_VERBS.get(m.group('verb'), m.group('verb'))} {items}"

    text = _REQUEST.sub(request, message)
    for python, flags in _PHRASES:
        if python in text and all(flag_for(parser, f) for f in flags):
            text = text.replace(python, python.split(" ")[0] + " " + " and ".join(flag_for(parser, f) for f in flags))
    if isinstance(error, ScheduleNotFoundError) and args is not None:
        for dest in ("schedule", "default"):
            given = getattr(args, dest, None)
            flag = flag_for(parser, dest)
            if given is not None and flag is not None:
                text = f"{flag} {escape_control(given)}: {text}"
                break
    return text


class WarningPrinter:
    """``warnings.formatwarning`` for the CLI: ``warning: <message>`` on one line (no source line), the
    message rephrased by :func:`cli_message` for the running command."""

    def __init__(self, command: str | None = None, parser: argparse.ArgumentParser | None = None, args=None):
        self.command, self.parser, self.args = command, parser, args

    def format(self, message, category=None, filename=None, lineno=None, line=None) -> str:
        text = escape_control(" ".join(str(message).split()))
        return f"warning: {cli_message(text, command=self.command, parser=self.parser, args=self.args)}\n"
