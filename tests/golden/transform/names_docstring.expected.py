#!/usr/bin/env python3
"""Feed parser utilities.

Author: <NAME> <<EMAIL>>
Maintainer: <NAME>
"""

import os

author = get_author()
AUTHOR_HEADER = "Author: Jane Doe"
written_by = "Written by John Smith"
maintainer = os.environ.get("MAINTAINER")


def credits():
    """Return the credits.

    Written by <NAME> and <NAME>.
    """
    return {"author": author, "maintainer": maintainer}


# The author field is optional; the list is sorted by default.
# Authors: <NAME>, <NAME> & <NAME>
# Copyright 2021 Google LLC
x = 1  # Copyright (c) 2019 <NAME>
