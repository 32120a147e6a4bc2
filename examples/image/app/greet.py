"""A local module that `includes` copies into every node's work directory."""

import os


def greeting() -> str:
    return f"hello from node {os.environ.get('SKYWARD_NODE', '?')}"


if __name__ == "__main__":
    print(greeting())
