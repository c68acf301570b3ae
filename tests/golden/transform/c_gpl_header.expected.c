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
