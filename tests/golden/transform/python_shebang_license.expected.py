#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""Command-line entry point for the frobnicator.

Reads widgets from stdin and prints the frobnicated result.
"""

import sys


def main() -> int:
    for line in sys.stdin:
        print(line.strip()[::-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
