#!/usr/bin/env python3
"""Feed parser utilities.

Author: Jane Doe <jane.doe@feedmail.org>
Maintainer: Bob Lee
"""

import os

author = get_author()
AUTHOR_HEADER = "Author: Jane Doe"
written_by = "Written by John Smith"
maintainer = os.environ.get("MAINTAINER")


def credits():
    """Return the credits.

    Written by John Smith and Mary-Ann O'Neil.
    """
    return {"author": author, "maintainer": maintainer}


# The author field is optional; the list is sorted by default.
# Authors: Jane Doe, jdoe & Bob Lee
# Copyright 2021 Google LLC
x = 1  # Copyright (c) 2019 Jane Doe
