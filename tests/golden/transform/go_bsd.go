// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build linux || darwin

// Package frob implements widget frobnication.
package frob

import "fmt"

// Frob prints a frobnicated widget.
func Frob(name string) {
	fmt.Println("frob", name)
}
