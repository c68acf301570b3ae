/*
 * frobnicate.c - widget frobnication helpers
 *
 * Copyright (C) 2003-2011 Jane Hacker <jane.hacker@kernel-mail.net>
 *
 * This program is free software; you can redistribute it and/or modify
 * it under the terms of the GNU General Public License as published by
 * the Free Software Foundation; either version 2 of the License, or
 * (at your option) any later version.
 *
 * This program is distributed in the hope that it will be useful,
 * but WITHOUT ANY WARRANTY; without even the implied warranty of
 * MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
 * GNU General Public License for more details.
 */
#include <stdio.h>
#include "frob.h"

/* Frobnicate one widget; returns 0 on success. */
int frob(struct widget *w)
{
	if (!w)
		return -1;
	w->state++;
	return 0;
}
