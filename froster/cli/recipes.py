"""``froster recipes``: list the shipped recipes, or print one."""
from __future__ import annotations

import argparse

NAME = "recipes"
HELP = "list the shipped recipes, or print one"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?")


def run(args: argparse.Namespace) -> int:
    from froster.recipes import list_recipes, load_recipe

    if args.name:
        print(load_recipe(args.name).to_json())
    else:
        print("\n".join(list_recipes()))
    return 0
