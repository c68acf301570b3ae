//go:build linux || darwin

// Package frob implements widget frobnication.
package frob

import "fmt"

// Frob prints a frobnicated widget.
func Frob(name string) {
	fmt.Println("frob", name)
}
