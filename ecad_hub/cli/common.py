"""What several ``ecad-hub`` commands share: flags that mean the same everywhere, and their values.

* ``--transformer-config``: a transformer ``config.json``, a model folder (``config.json`` or
  ``transformer/config.json``) or a Hub model id (``owner/name``: its ``transformer/config.json``,
  at ``--base-revision``), resolved to a config dict by :func:`.inspect.resolve_transformer_config`;
* ``--base-revision``: the base model's commit; ``--revision``: the ECAD repo's revision;
  ``--repo``: the ECAD repo; old spellings stay as hidden, deprecated aliases
  (:func:`add_deprecated_alias`; :data:`DEPRECATED_ALIASES` lists them, the help test reads it).
"""

from __future__ import annotations

import argparse
import sys

#: (command, hidden old flag) -> the flag to use instead
DEPRECATED_ALIASES: dict[tuple[str, str], str] = {}


class _DeprecatedAlias(argparse.Action):
    """An old spelling of a flag: stores into the new flag's ``dest`` and says, on one line, what to use."""

    def __init__(self, option_strings, dest, *, replacement: str, **kwargs):
        self.replacement = replacement
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} is deprecated for `{parser.prog}`; use {self.replacement}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_deprecated_alias(p: argparse.ArgumentParser, command: str, old: str, new: str, *, dest: str,
                         metavar: str | None = None) -> None:
    """Accept ``old`` (hidden from ``--help``) as a deprecated spelling of ``new`` (same ``dest``)."""
    DEPRECATED_ALIASES[(command, old)] = new
    p.add_argument(old, dest=dest, action=_DeprecatedAlias, replacement=new, metavar=metavar, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)


def add_base_revision(p: argparse.ArgumentParser, command: str, help: str, *, old_revision: bool = False) -> None:
    """``--base-revision REV`` (dest ``base_revision``); ``old_revision``: ``--revision`` meant it here before."""
    p.add_argument("--base-revision", metavar="REV", help=help)
    if old_revision:
        add_deprecated_alias(p, command, "--revision", "--base-revision", dest="base_revision", metavar="REV")


TRANSFORMER_CONFIG_HELP = ("the transformer's config: a config.json, a model folder (with config.json or "
                           "transformer/config.json), or a Hub model id owner/name (its transformer/config.json, "
                           "at --base-revision)")


