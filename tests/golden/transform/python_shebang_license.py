#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright 2019 The Example Authors. All Rights Reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
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
