#include <stdio.h>

/* Portions Copyright (C) 2010-2015, <NAME> */
static const char *who = "Copyright 2019 Jane Doe";
int copyright_year = 2019; // Copyright 2008 Google Inc. All Rights Reserved.
